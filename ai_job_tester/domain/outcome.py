"""Classify what happened to one job. Pure: no sockets, no clock.

Error codes posted to the leaderboard (and shown in the table):

========================  =======================================================
``<status>``              the gateway answered with this non-2xx HTTP status
``TIMEOUT``               no complete reply within the pipeline's ``timeout``
``CONNECTION_DROPPED``    the connection closed before a complete reply
``MALFORMED_REPLY``       the reply broke HTTP: status line, headers (a line with no
                          colon, a bad Content-Length, a transfer coding other than
                          chunked), chunking or content encoding
``INVALID_RESPONSE``      a 2xx whose body lacks the route's success shape
``STREAM_INCOMPLETE``     an LLM stream ended without a chunk with a ``finish_reason``
``STREAM_ERROR``          an LLM stream carried an ``error`` event
``BAD_OUTPUT``            the media the reply points at is missing, empty, of the
                          wrong kind or on a host not allowed (set by the cycle after
                          ``media.judge``)
``REPLAYED_OUTPUT``       the output is identical to an earlier job's for another
                          request (set by the cycle's replay check, ``fingerprints``)
========================  =======================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .replies import check_reply
from .streaming import StreamStats
from .text import gateway_message

TESTER_MODE_HINT = (
    "start the gateway with -orchWebhookUrl <this webhook> -webhookRefreshInterval=0 "
    "-aiTesterGateway=true (see the README)"
)


class Outcome(StrEnum):
    """How a job ended, from the leaderboard's point of view."""

    PASSED = "passed"  # posted with success_rate 1
    FAILED = "failed"  # the orchestrator's failure, posted with success_rate 0
    UNROUTED = "unrouted"  # no proof of which orchestrator ran it: never posted
    REJECTED = "rejected"  # the gateway refused the request before routing: a tester or config fault
    NOT_RUN = "not run"  # the cycle stopped before this job: never posted
    DEFERRED = "deferred"  # the time budget was spent: rotation runs it first next cycle
    BUSY = "busy"  # a live orchestrator stayed full through every retry: not scored, not posted

    @property
    def postable(self) -> bool:
        return self in (Outcome.PASSED, Outcome.FAILED)


class TransportFault(StrEnum):
    """A job that got no complete HTTP reply."""

    TIMEOUT = "TIMEOUT"
    DROPPED = "CONNECTION_DROPPED"
    MALFORMED = "MALFORMED_REPLY"  # the peer answered, but not in HTTP


@dataclass(frozen=True, slots=True)
class Exchange:
    """What one job's request got back, as seen on the wire."""

    status: int | None
    body: bytes  # the captured part of the reply (see ``captured_all``)
    round_trip: float
    webhook_requests: int
    fault: TransportFault | None = None
    fault_detail: str = ""
    captured_all: bool = True
    stream: StreamStats | None = None  # set when the reply was an event stream


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a job with its error code and a one-line message."""

    outcome: Outcome
    error_code: str | None = None
    message: str = ""


def classify(route: str, exchange: Exchange) -> Verdict:
    """Decide whether the orchestrator passed, failed, or cannot be held to the result."""
    if exchange.webhook_requests == 0:
        return _unrouted(exchange)
    if exchange.fault is not None:
        return Verdict(Outcome.FAILED, exchange.fault.value, exchange.fault_detail)
    assert exchange.status is not None
    if not 200 <= exchange.status < 300:
        return Verdict(Outcome.FAILED, str(exchange.status), gateway_message(exchange.body))
    if exchange.stream is not None:
        return _judge_stream(exchange.stream)
    if not exchange.captured_all:
        # Every success shape of the contract is a few kilobytes; a reply past the capture
        # limit is not one of them and cannot be checked.
        return Verdict(Outcome.FAILED, "INVALID_RESPONSE", "the reply is larger than the capture limit")
    problem = check_reply(route, exchange.body)
    if problem:
        return Verdict(Outcome.FAILED, "INVALID_RESPONSE", problem)
    return Verdict(Outcome.PASSED)


def _judge_stream(stream: StreamStats) -> Verdict:
    if stream.error is not None:
        return Verdict(Outcome.FAILED, "STREAM_ERROR", f"the stream carried an error: {stream.error}")
    if not stream.finished:
        return Verdict(Outcome.FAILED, "STREAM_INCOMPLETE", "the stream ended without a chunk with a finish_reason")
    return Verdict(Outcome.PASSED)


def _unrouted(exchange: Exchange) -> Verdict:
    if exchange.status is not None and 400 <= exchange.status < 500:
        detail = f"the gateway rejected the request before routing it (HTTP {exchange.status}: "
        return Verdict(
            Outcome.REJECTED,
            str(exchange.status),
            detail + f"{gateway_message(exchange.body)}); check this pipeline's parameters",
        )
    return Verdict(
        Outcome.UNROUTED,
        None,
        f"the gateway never asked the webhook during this job, so it may have run anywhere: {TESTER_MODE_HINT}",
    )
