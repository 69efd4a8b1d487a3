"""Text that came from outside (gateways, orchestrators, the leaderboard), made safe to keep or show. Pure.

Everything an orchestrator or gateway sends is untrusted: names, messages, bodies. Two
destinations need two treatments:

- ``storable``: for rows and files. The leaderboard keeps rows as PostgreSQL JSONB, which
  refuses NUL for ever, and a lone surrogate cannot even be encoded as UTF-8; both go.
- ``printable``: for the terminal and log lines. One line, no control characters, no
  escape sequences, no bidirectional overrides, so a message cannot forge a log line,
  recolour the terminal or hide what it says.
"""

from __future__ import annotations

import json
import re

from pydantic import ValidationError

TRUNCATION_MARKER = "…[truncated by ai-job-tester]"

_SURROGATES = re.compile("[\ud800-\udfff]")
# C0 and C1 controls, DEL, and the format characters that reorder or hide text.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def storable(text: str, limit: int | None = None) -> str:
    """Return ``text`` without NUL and lone surrogates, cut to ``limit`` characters with a marker."""
    text = _SURROGATES.sub("\ufffd", text.replace("\x00", ""))
    if limit is None or len(text) <= limit:
        return text
    return text[: max(0, limit - len(TRUNCATION_MARKER))] + TRUNCATION_MARKER


def printable(text: str, limit: int = 300) -> str:
    """Return ``text`` as one inert line for a terminal or a log, at most ``limit`` characters."""
    flat = " ".join(_UNPRINTABLE.sub(" ", _SURROGATES.sub("\ufffd", text)).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def decoded(body: bytes) -> str:
    """Decode bytes from the wire as UTF-8, whatever they are (invalid sequences become U+FFFD)."""
    return body.decode("utf-8", errors="replace")


def gateway_message(body: bytes, limit: int = 300) -> str:
    """Return the error message of a reply (``{"error":{"message":…}}``) or the body's start, as one inert line."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        data = None
    if isinstance(data, dict):
        error = data.get("error", data.get("detail"))
        if isinstance(error, dict):
            error = error.get("message", error.get("msg"))
        if isinstance(error, str) and error:
            return printable(error, limit)
    return printable(decoded(body[: limit * 4]), limit) or "(empty body)"


def first_error(exc: ValidationError, *, hints: dict[str, str] | None = None) -> tuple[str, str]:
    """Return where the first problem of a pydantic error is (``a.b[0].c``) and what it is, in words.

    ``hints`` replaces pydantic's message for error types (``extra_forbidden``, ``missing``…).
    """
    first = exc.errors(include_input=False, include_url=False)[0]
    message = (hints or {}).get(first["type"]) or first["msg"].removeprefix("Value error, ")
    return field_path(first["loc"]), message


def field_path(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic location as the config file spells it: ``pipelines[2].uri``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]" if path else str(part)  # a list at the top: "0.Address"
        elif part.startswith(("function-", "json-or-python")):
            continue
        else:
            path += f".{part}" if path else part
    return path
