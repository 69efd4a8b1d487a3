"""``validate``: what a config would test, and (online) whether its endpoints answer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

from .config import Config
from .domain.plan import live_blocker
from .errors import GatewayReplyError, GatewayUnreachable, LeaderboardRegionError, OnlineCheckError
from .network.gateway import GatewayCli
from .network.leaderboard import Leaderboard, regions_url


@dataclass(frozen=True, slots=True)
class PipelineSummary:
    """One configured pipeline as the tester will send it."""

    name: str
    route: str
    content_type: str
    model_field: str
    asset: Path | None
    timeout: float
    not_tested: str | None  # why this pipeline would not be tested, or None


def summarise(config: Config, *, has_ffmpeg: bool) -> list[PipelineSummary]:
    """Describe every pipeline as a run would test it (live ones need a liveVideo block and ffmpeg). Pure."""
    blocked = live_blocker(has_block=config.live_video is not None, has_ffmpeg=has_ffmpeg)
    if not config.tests_ai:
        blocked = "jobType is transcoding"
    return [
        PipelineSummary(
            name=pipeline.name,
            route=pipeline.route,
            content_type=pipeline.content_type,
            model_field=pipeline.resolved_model_field,
            asset=config.asset_paths.get(index),
            timeout=pipeline.timeout,
            not_tested=blocked if pipeline.is_live or not config.tests_ai else None,
        )
        for index, pipeline in enumerate(config.pipelines)
    ]


def describe_transcoding(config: Config) -> str | None:
    """One line on what transcoding a run would test, or None when it tests none. Pure."""
    spec = config.transcode_spec()
    if spec is None:
        return None
    segment = spec.segment
    size = f", {segment.resolution}" if segment.resolution else ""
    profiles = ", ".join(f"{p.name} {p.width}x{p.height} {p.bitrate // 1000} kbit/s" for p in spec.profiles)
    return (
        f"transcoding: {spec.segments} segment(s) of {segment.path} ({segment.duration:g} s{size}) per orchestrator, "
        f"renditions {profiles}, at most {spec.timeout:g} s per segment"
    )


def row_kinds(config: Config) -> list[str]:
    """The leaderboard region types this config's rows need."""
    return (["ai"] if config.tests_ai else []) + (["transcoding"] if config.transcoding_settings else [])


def check_online(config: Config, *, transport: httpx.BaseTransport | None = None) -> list[str]:
    """Ask the gateway's CLI port and the leaderboard's regions; return what each said."""
    with httpx.Client(transport=transport, verify=config.verify_tls, follow_redirects=False) as client:
        try:
            orchestrators = GatewayCli(client, config.lanes[0].broadcaster_cli_endpoint).registered_orchestrators()
        except (GatewayUnreachable, GatewayReplyError) as exc:
            raise OnlineCheckError(str(exc)) from None
        board = Leaderboard(client, config.metrics_api_endpoint, config.metrics_secret)
        found = {kind: board.regions(kind) for kind in row_kinds(config)}
    lines = [f"gateway CLI port {config.lanes[0].broadcaster_cli_endpoint}: {len(orchestrators)} active orchestrators"]
    for kind, regions in found.items():
        label = "AI" if kind == "ai" else kind
        if regions is None:
            raise OnlineCheckError(
                f"the leaderboard's regions endpoint {regions_url(config.metrics_api_endpoint)} does not answer"
            )
        article = "an" if kind == "ai" else "a"
        if config.region not in regions:
            raise LeaderboardRegionError(
                f"region {config.region!r} is not {article} {label} region on the leaderboard; its {label} regions "
                f"are: {', '.join(regions)}"
            )
        lines.append(f"leaderboard {regions_url(config.metrics_api_endpoint)}: {config.region} is {article} {label} "
                     "region")  # fmt: skip
    return lines
