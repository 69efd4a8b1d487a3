"""The whole simulated network: a gateway, its orchestrators and a leaderboard."""

from __future__ import annotations

import json
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from ..resources import seed_config
from .gateway import CapabilityApi, SimGateway
from .leaderboard import SimLeaderboard
from .scenario import Fault, SimModel, SimOrchestrator

SIM_SECRET = "sandbox-secret"


def demo_orchestrators() -> list[SimOrchestrator]:
    """A small network with every batch pipeline, warm and cold models, and each fault."""
    return [
        SimOrchestrator(
            address="0x1111111111111111111111111111111111111111",
            service_uri="https://orch-one.sim:8935",
            latency=0.02,
            models=(
                SimModel("Text to image", "ByteDance/SDXL-Lightning"),
                SimModel("Image to image", "timbrooks/instruct-pix2pix"),
                SimModel("Llm", "meta-llama/Meta-Llama-3.1-8B-Instruct"),
                SimModel("Audio to text", "openai/whisper-large-v3"),
                SimModel("Image to video", "stabilityai/stable-video-diffusion-img2vid-xt-1-1", warm=False),
            ),
        ),
        SimOrchestrator(
            address="0x2222222222222222222222222222222222222222",
            service_uri="https://orch-two.sim:8935",
            latency=0.03,
            models=(
                SimModel("Upscale", "stabilityai/stable-diffusion-x4-upscaler"),
                SimModel("Segment anything 2", "facebook/sam2-hiera-large"),
                SimModel("Image to text", "Salesforce/blip-image-captioning-large"),
                SimModel("Text to speech", "parler-tts/parler-tts-large-v1"),
                SimModel("Text to image", "ByteDance/SDXL-Lightning"),
            ),
            faults={"Image to text": Fault.ERROR},
        ),
        SimOrchestrator(
            address="0xAbCdEf0000000000000000000000000000000003",
            service_uri="https://orch-three.sim:8935",
            latency=0.01,
            models=(
                SimModel("Text to image", "ByteDance/SDXL-Lightning"),
                SimModel("Live video to video", "comfyui"),
            ),
            fault=Fault.DROP,
        ),
        SimOrchestrator(
            address="0x4444444444444444444444444444444444444444",
            service_uri="https://orch-four.sim:8935",
            models=(SimModel("Text to image", "ByteDance/SDXL-Lightning"),),
            active=False,  # registered but inactive: never tested
        ),
    ]


class SimNetwork:
    """Starts and stops the simulated gateway and leaderboard on loopback."""

    def __init__(
        self,
        orchestrators: Sequence[SimOrchestrator] | None = None,
        *,
        secret: str = SIM_SECRET,
        region: str = "FRA",
        capability_api: CapabilityApi = "ai",
        tester_mode: bool = True,
    ) -> None:
        self.region = region
        self.secret = secret
        self.orchestrators = list(demo_orchestrators() if orchestrators is None else orchestrators)
        self.gateway = SimGateway(self.orchestrators, capability_api=capability_api, tester_mode=tester_mode)
        self.leaderboard = SimLeaderboard(secret)

    def start(self) -> None:
        self.leaderboard.start()
        self.gateway.start()

    def stop(self) -> None:
        self.gateway.stop()
        self.leaderboard.stop()

    def __enter__(self) -> SimNetwork:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def point_webhook(self, port: int) -> None:
        """Tell the gateway where the tester's webhook listens (its -orchWebhookUrl)."""
        self.gateway.webhook_url = f"http://127.0.0.1:{port}/orchestrators"

    def tester_config(
        self, *, webhook_port: int, pipelines: list[dict[str, Any]] | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Return a Go-format config for this network, with the shipped pipelines by default."""
        self.point_webhook(webhook_port)
        return {
            "region": self.region,
            "jobType": "ai",
            "internalWebServerPort": str(webhook_port),
            "internalWebServerAddress": "127.0.0.1",
            "metricsApiEndpoint": self.leaderboard.post_stats_url,
            "metricsSecret": self.secret,
            "broadcasterJobEndpoint": self.gateway.http_url,
            "broadcasterCliEndpoint": self.gateway.cli_url,
            "broadcasterRequestToken": "None",
            "pipelines": shipped_pipelines() if pipelines is None else pipelines,
            **extra,
        }


def shipped_pipelines() -> list[dict[str, Any]]:
    """Return the pipelines of the shipped ``configs/config.json``."""
    path = seed_config()
    if path is None:
        raise FileNotFoundError("the shipped configs/config.json is not installed")
    pipelines: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["pipelines"]
    return pipelines
