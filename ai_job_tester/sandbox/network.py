"""The whole simulated network: a gateway, its orchestrators and a leaderboard."""

from __future__ import annotations

import json
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from ..resources import seed_config
from .gateway import CapabilityApi, SimGateway
from .leaderboard import SimLeaderboard
from .media import SimMediaServer
from .scenario import Fault, LiveBehaviour, SimModel, SimOrchestrator, TranscodeBehaviour, TranscodeFault

SIM_SECRET = "sandbox-secret"
SIM_WEBHOOK_TOKEN = "sandbox-webhook-token-0123456789"


def demo_orchestrators() -> list[SimOrchestrator]:
    """A small network with every batch pipeline, warm and cold models, and each fault.

    Every orchestrator transcodes; the third, whose AI jobs drop, also fails every segment.
    """
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
            live=LiveBehaviour(fps=15),
            transcoding=TranscodeBehaviour(fault=TranscodeFault.ERROR),
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
        gateways: int = 1,
        webhook_token: str | None = SIM_WEBHOOK_TOKEN,
        gateway_sends_token: bool = True,
        max_sessions: int = 10,
        stream_idle_seconds: float = 60.0,
    ) -> None:
        self.region = region
        self.secret = secret
        # As a real deployment should: only the gateway's webhook requests, with the token, count.
        self.webhook_token = webhook_token
        # False starts the gateways with a plain -orchWebhookUrl …/orchestrators, as a
        # misconfigured deployment does: its jobs come out unrouted.
        self.gateway_sends_token = gateway_sends_token
        self.orchestrators = list(demo_orchestrators() if orchestrators is None else orchestrators)
        # Several gateways share the orchestrators, as gateways of one region do: one per lane.
        self.gateways = [
            SimGateway(
                self.orchestrators,
                capability_api=capability_api,
                tester_mode=tester_mode,
                max_sessions=max_sessions,
                stream_idle_seconds=stream_idle_seconds,
            )
            for _ in range(gateways)
        ]
        self.leaderboard = SimLeaderboard(secret)
        self.media_server = SimMediaServer(self.gateways[0].live)

    @property
    def gateway(self) -> SimGateway:
        return self.gateways[0]

    def start(self) -> None:
        self.leaderboard.start()
        self.media_server.start()
        for gateway in self.gateways:
            gateway.start()

    def stop(self) -> None:
        for gateway in self.gateways:
            gateway.stop()
        self.media_server.stop()
        self.leaderboard.stop()

    def live_video(self, **settings: Any) -> dict[str, Any]:
        """A ``liveVideo`` block for this network's media server, with timings short enough for tests."""
        return {
            "mediaServerURL": self.media_server.url,
            "testDurationSeconds": 2,
            "targetFPS": 15,
            "maxInitialLatencySeconds": 5,
            "statusTimeoutSeconds": 5,
            "outputTimeoutSeconds": 8,
            "busyPasses": 3,
            "busyBackoffSeconds": 0.2,
            **settings,
        }

    def __enter__(self) -> SimNetwork:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def point_webhook(self, port: int, gateway: int = 0) -> None:
        """Tell a gateway where its lane's webhook listens (its -orchWebhookUrl, with the token)."""
        path = "/orchestrators"
        if self.webhook_token and self.gateway_sends_token:
            path += f"/{self.webhook_token}"
        self.gateways[gateway].webhook_url = f"http://127.0.0.1:{port}{path}"

    def tester_config(
        self,
        *,
        webhook_port: int | None = None,
        webhook_ports: list[int] | None = None,
        pipelines: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Return a config for this network, with the shipped pipelines by default.

        With ``webhook_port`` it is the Go tester's single-gateway format; with
        ``webhook_ports`` (one per gateway) it lists the lanes under ``gateways``.
        """
        common = {
            "region": self.region,
            "jobType": "ai",
            "metricsApiEndpoint": self.leaderboard.post_stats_url,
            "metricsSecret": self.secret,
            "broadcasterRequestToken": "None",
            **({"webhookToken": self.webhook_token} if self.webhook_token else {}),
            "pipelines": shipped_pipelines() if pipelines is None else pipelines,
        }
        if webhook_ports is None:
            assert webhook_port is not None, "give webhook_port or webhook_ports"
            self.point_webhook(webhook_port)
            return {**common, **self._lane(0, webhook_port), **extra}
        for index, port in enumerate(webhook_ports):
            self.point_webhook(port, index)
        return {**common, "gateways": [self._lane(i, port) for i, port in enumerate(webhook_ports)], **extra}

    def _lane(self, index: int, port: int) -> dict[str, Any]:
        gateway = self.gateways[index]
        return {
            "internalWebServerPort": str(port),
            "internalWebServerAddress": "127.0.0.1",
            "broadcasterJobEndpoint": gateway.http_url,
            "broadcasterCliEndpoint": gateway.cli_url,
        }


def shipped_pipelines() -> list[dict[str, Any]]:
    """Return the pipelines of the shipped ``configs/config.json``."""
    path = seed_config()
    if path is None:
        raise FileNotFoundError("the shipped configs/config.json is not installed")
    pipelines: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["pipelines"]
    return pipelines
