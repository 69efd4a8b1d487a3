"""Splitting a ``multipart/mixed`` reply into its parts (RFC 2046, as Go's ``mime/multipart`` writes it). Pure.

The gateway's transcoding reply is one part per rendition. The body handed in is already
bounded by the caller's capture limit, so splitting it in memory is bounded too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_BOUNDARY = re.compile(r"""boundary\s*=\s*(?:"([^"]{1,70})"|([^;\s"]{1,70}))""", re.IGNORECASE)
MAX_PART_HEADERS = 32


@dataclass(frozen=True, slots=True)
class Part:
    """One part: its headers (names lower-cased) and its body."""

    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def rendition_name(self) -> str | None:
        return self.headers.get("rendition-name")


class MalformedMultipart(ValueError):
    """The body does not follow the multipart framing its Content-Type announced."""


def boundary_of(content_type: str) -> str | None:
    """Return the boundary of a ``multipart/mixed`` Content-Type, or None when it is something else."""
    if not content_type.lower().lstrip().startswith("multipart/mixed"):
        return None
    match = _BOUNDARY.search(content_type)
    if match is None:
        return None
    return match.group(1) or match.group(2)


def split(body: bytes, boundary: str) -> list[Part]:
    """Return the parts of ``body``; raise ``MalformedMultipart`` when its framing is broken.

    A body with no part at all (just the closing delimiter, or nothing) is an empty list.
    """
    if not body.strip():
        return []
    dash = b"--" + boundary.encode("latin-1")
    # The first delimiter may open the body; every later one follows a CRLF.
    if body.startswith(dash):
        body = b"\r\n" + body
    chunks = body.split(b"\r\n" + dash)
    if len(chunks) < 2:
        raise MalformedMultipart("the body has no multipart delimiter")
    parts: list[Part] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            return parts  # the closing delimiter: whatever follows is the epilogue
        parts.append(_part(chunk))
    raise MalformedMultipart("the body ends without the closing multipart delimiter (cut short?)")


def _part(chunk: bytes) -> Part:
    # After the delimiter: optional transport padding, CRLF, headers, an empty line, the body.
    line_end = chunk.find(b"\r\n")
    if line_end < 0 or chunk[:line_end].strip(b" \t"):
        raise MalformedMultipart("a multipart delimiter is followed by something other than a line break")
    rest = chunk[line_end + 2 :]
    head_end = rest.find(b"\r\n\r\n")
    if rest.startswith(b"\r\n"):
        head, body = b"", rest[2:]
    elif head_end >= 0:
        head, body = rest[:head_end], rest[head_end + 4 :]
    else:
        raise MalformedMultipart("a part's headers do not end with an empty line")
    headers: dict[str, str] = {}
    lines = head.split(b"\r\n") if head else []
    if len(lines) > MAX_PART_HEADERS:
        raise MalformedMultipart(f"a part has more than {MAX_PART_HEADERS} headers")
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            raise MalformedMultipart("a part has a header line without a name")
        headers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
    return Part(headers, body)
