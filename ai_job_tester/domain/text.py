"""Text that came from outside (gateways, orchestrators, the leaderboard), made safe to keep or show. Pure.

Everything an orchestrator or gateway sends is untrusted: names, messages, bodies. Two
destinations need two treatments:

- ``storable``: for rows and files. The leaderboard keeps rows as PostgreSQL JSONB, which
  refuses NUL for ever, and a lone surrogate cannot even be encoded as UTF-8; both go.
- ``printable``: for the terminal and log lines. One line, no control characters, no
  escape sequences, no bidirectional overrides, so a message cannot forge a log line,
  recolour the terminal or hide what it says.

JSON from outside is parsed by ``loads_untrusted`` alone: ``json.loads`` recurses once per
level of nesting, so ``[`` × 100000 raises ``RecursionError``, which no ``except ValueError``
catches, and a document just under the interpreter's limit would break whatever walks it next.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

TRUNCATION_MARKER = "…[truncated by ai-job-tester]"

_SURROGATES = re.compile("[\ud800-\udfff]")
# C0 and C1 controls, DEL, and the format characters that reorder or hide text.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")

MAX_JSON_DEPTH = 100
"""How deep JSON from outside may nest; a gateway's or orchestrator's replies nest a few levels."""

# A string literal, or an unterminated one to the end: it always matches and never backtracks,
# so stripping strings stays linear on any input.
_STRING = re.compile(r'"(?:[^"\\]++|\\.?)*+(?:"|\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_BRACKET_RUN = re.compile(r"\[+|\]+")
_PAIR_PASSES = 8


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
    data = loads_object(body)
    if data is not None:
        error = data.get("error", data.get("detail"))
        if isinstance(error, dict):
            error = error.get("message", error.get("msg"))
        if isinstance(error, str) and error:
            return printable(error, limit)
    return printable(decoded(body[: limit * 4]), limit) or "(empty body)"


class NestedTooDeep(ValueError):
    """JSON from outside that nests deeper than ``MAX_JSON_DEPTH``."""


def loads_untrusted(data: bytes | str) -> Any:
    """Parse JSON from outside; raise ``ValueError`` for anything ``json.loads`` refuses, or nesting too deep."""
    # Decoded as json.loads decodes bytes (UTF-8, -16 or -32 by the first bytes), so the depth is counted on text.
    text = data if isinstance(data, str) else data.decode(json.detect_encoding(data), "surrogatepass")
    _check_nesting(text, MAX_JSON_DEPTH)
    try:
        return json.loads(text)
    except RecursionError:  # only if called already deep in the stack: the depth is checked above
        raise NestedTooDeep("nested too deep to parse") from None


def loads_object(data: bytes | str) -> dict[str, Any] | None:
    """Parse JSON from outside that should be an object; None when it is not one (or not JSON at all)."""
    try:
        parsed = loads_untrusted(data)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _check_nesting(text: str, limit: int) -> None:
    """Raise unless the brackets outside strings pair up within ``limit`` levels, before json.loads recurses."""
    if text.count("[") + text.count("{") <= limit:  # the usual reply: no need to look closer
        return
    # As one kind of bracket (a mismatch is json.loads' to find). Removing the innermost pairs
    # lowers the deepest level by one and takes the bulk of a wide document at C speed; the
    # runs left are then few enough to count in Python, and a depth is exact where it is
    # counted: removing a pair leaves every other position's depth as it was.
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text)).replace("{", "[").replace("}", "]")
    removed = 0
    while removed < _PAIR_PASSES and len(inner := brackets.replace("[]", "")) < len(brackets):
        brackets, removed = inner, removed + 1
    depth = 0
    for run in _BRACKET_RUN.findall(brackets):
        depth += len(run) if run[0] == "[" else -len(run)
        if depth < 0:
            break
        if depth + removed > limit:
            raise NestedTooDeep(f"nested deeper than {limit} levels")
    if depth:
        raise ValueError("not JSON: its brackets do not pair up")


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
