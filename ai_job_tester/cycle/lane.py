"""A lane: one gateway, its own webhook and connection, testing one job at a time.

``Lane.measure`` is one job from pointing the webhook to the classified result; it
raises ``GatewayUnreachable`` when the job never got to an orchestrator through this
gateway, so the job can go to another lane. It is also where a job's kind decides how
it is measured: an AI request here, a transcoding stream in ``transcode.py``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import ExitStack

import httpx

from ..config import GatewayConfig
from ..domain import media, rows
from ..domain.fingerprints import Kind, decodes_greedily, text_digest
from ..domain.outcome import Outcome, TransportFault, Verdict, classify
from ..domain.plan import JobKind, PlannedJob
from ..domain.reply_text import reply_text
from ..domain.results import JobResult
from ..errors import GatewayUnreachable
from ..network.gateway import accepts_connections
from ..network.jobs import PreparedJob, prepare, send
from ..network.media import fetch
from ..network.webhook import Webhook
from .replays import ReplayGuard
from .transcode import measure_transcoding


class Lane:
    """One gateway of the cycle; ``number`` counts from 1 for people."""

    def __init__(
        self,
        number: int,
        gateway: GatewayConfig,
        webhook: Webhook,
        client: httpx.Client,
        *,
        capture_limit: int,
        media_hosts: Sequence[str] = (),
    ) -> None:
        self.number = number
        self.gateway = gateway
        self.webhook = webhook
        self.client = client
        self.capture_limit = capture_limit
        # Media come from the gateway's host (its in-memory ring) or the object stores the config names.
        self.media_hosts = media.allowed_hosts(httpx.URL(gateway.broadcaster_job_endpoint).host, media_hosts)
        self.failed: str | None = None  # why this lane stopped, if it did
        self.replays: ReplayGuard | None = None  # the cycle's replay check, shared by every lane

    def idle(self, everyone: Sequence[str]) -> None:
        """Between jobs the webhook lists every orchestrator, as the gateway expects when idle."""
        self.webhook.show(everyone)

    def point_at(self, job: PlannedJob) -> None:
        """From now on the gateway can pick only this job's orchestrator."""
        self.webhook.show([job.orchestrator.service_uri])

    def measure(self, job: PlannedJob) -> JobResult:
        """Measure the job once (after ``point_at``), the way its kind is measured, and classify it."""
        if job.kind is JobKind.TRANSCODING:
            return measure_transcoding(
                job,
                client=self.client,
                gateway=self.gateway,
                webhook_requests=lambda: self.webhook.requests,
                capture_limit=self.capture_limit,
                check_alive=self._check_alive,
            )
        return self._measure_request(job)

    def _measure_request(self, job: PlannedJob) -> JobResult:
        """Send an AI job once and classify the reply."""
        pipeline = job.request
        with ExitStack() as files:
            prepared = prepare(job, self.gateway, files)
            started_at = int(time.time())
            exchange = send(
                self.client,
                prepared,
                webhook_requests=lambda: self.webhook.requests,
                capture_limit=self.capture_limit,
            )
        verdict = classify(job.route, exchange)
        if verdict.error_code in (TransportFault.DROPPED.value, TransportFault.MALFORMED.value):
            self._check_alive()
        check_seconds, media_digest, fingerprint = None, None, None
        if verdict.outcome is Outcome.PASSED and pipeline.verify_output:
            verdict, check_seconds, media_digest = self._check_output(job, exchange.body, verdict)
        if verdict.outcome is Outcome.PASSED:
            verdict, fingerprint = self._check_replay(job, prepared, exchange.body, media_digest, started_at, verdict)
        stream = exchange.stream
        return JobResult(
            job=job,
            verdict=verdict,
            started_at=started_at,
            round_trip=exchange.round_trip,
            status=exchange.status,
            input_parameters=prepared.input_parameters,
            response_payload=rows.response_payload(
                exchange.body, capture=pipeline.capture_response, passed=verdict.outcome is Outcome.PASSED
            ),
            output_check_seconds=check_seconds,
            fingerprint=fingerprint,
            time_to_first_token=None if stream is None else stream.first_token_at,
            tokens_per_second=None if stream is None else stream.tokens_per_second,
        )

    def _check_alive(self) -> None:
        # A dropped connection is the orchestrator's failure only if the gateway is still there:
        # a gateway that died mid-job drops it too, and that is no orchestrator's fault.
        endpoint = self.gateway.broadcaster_job_endpoint
        if not accepts_connections(endpoint):
            raise GatewayUnreachable(f"the gateway at {endpoint} went away during a job and accepts no connections")

    def _check_output(self, job: PlannedJob, body: bytes, verdict: Verdict) -> tuple[Verdict, float | None, str | None]:
        """Fetch the media the reply points at, right away (a gateway keeps it only briefly); return its digest."""
        target = media.media_target(job.route, body)
        if target is None:
            return verdict, None, None
        fetched = fetch(self.client, self.gateway.broadcaster_job_endpoint, target, allowed=self.media_hosts)
        if fetched.error is not None:
            self._check_alive()  # a gateway that died after replying is no orchestrator's bad output
        if fetched.unlisted_host:
            # The gateway writes media URLs (its own port or its object store): a host the config
            # does not list is ours to fix, and the output went unchecked, so nothing is posted.
            why = f"the output was not checked: {media.judge(target, fetched)}"
            return Verdict(Outcome.REJECTED, media.MEDIA_HOST_NOT_ALLOWED, why), fetched.seconds, None
        problem = media.judge(target, fetched)
        if problem is not None:
            return Verdict(Outcome.FAILED, "BAD_OUTPUT", problem), fetched.seconds, None
        # A safety filter's stand-in image is the same for many requests: never evidence of a replay.
        return verdict, fetched.seconds, None if target.nsfw else fetched.digest

    def _check_replay(
        self,
        job: PlannedJob,
        prepared: PreparedJob,
        body: bytes,
        media_digest: str | None,
        started_at: int,
        verdict: Verdict,
    ) -> tuple[Verdict, str | None]:
        """Compare a passing job's output with every earlier one; return the verdict and the fingerprint compared.

        Only a fresh request is compared (see ``domain.fingerprints`` for what is never evidence).
        """
        varied = prepared.varied
        if self.replays is None or not varied.fresh:
            return verdict, None
        kind, digest = Kind.MEDIA, media_digest
        if digest is None and varied.texts and not decodes_greedily(varied.parameters):
            text = reply_text(job.route, body)
            kind, digest = Kind.TEXT, None if text is None else text_digest(text)
        if digest is None:
            return verdict, None
        replay = self.replays.check(
            job, kind=kind, digest=digest, started_at=started_at, input_parameters=prepared.input_parameters
        )
        return replay or verdict, digest
