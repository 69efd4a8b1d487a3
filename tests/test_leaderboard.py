"""Posting rows: signed over the exact bytes; every failure reported, none raised."""

from __future__ import annotations

import hashlib
import hmac

import httpx
import respx
from pydantic import SecretStr

from ai_job_tester.domain.outcome import Outcome, Verdict
from ai_job_tester.domain.results import build_row
from ai_job_tester.domain.rows import LeaderboardRow
from ai_job_tester.network.leaderboard import Leaderboard

from .test_rows import JOB, result

URL = "https://leaderboard/api/post_stats"


def row() -> LeaderboardRow:
    return build_row(result(Verdict(Outcome.PASSED)), "FRA")


@respx.mock
def test_post_signs_the_bytes_it_sends() -> None:
    route = respx.post(URL).respond(200, text="ok")
    with httpx.Client() as client:
        delivery = Leaderboard(client, URL, SecretStr("secret")).post(row())
    sent = route.calls.last.request
    assert delivery.delivered
    assert sent.headers["Authorization"] == hmac.new(b"secret", sent.content, hashlib.sha256).hexdigest()
    assert sent.headers["Content-Type"] == "application/json"
    assert JOB.orchestrator.address.encode() in sent.content


@respx.mock
def test_a_refused_row_is_reported_with_the_servers_answer() -> None:
    respx.post(URL).respond(403, text="invalid signature")
    with httpx.Client() as client:
        delivery = Leaderboard(client, URL, SecretStr("secret")).post(row())
    assert (delivery.delivered, delivery.status, delivery.message) == (False, 403, "HTTP 403: invalid signature")


@respx.mock
def test_an_unreachable_leaderboard_is_reported_without_the_secret() -> None:
    respx.post(URL).mock(side_effect=httpx.ConnectError("connection refused"))
    with httpx.Client() as client:
        delivery = Leaderboard(client, URL, SecretStr("secret")).post(row())
    assert not delivery.delivered and "could not be reached" in delivery.message
    assert "secret" not in delivery.message
