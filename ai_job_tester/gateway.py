"""Discovery calls to the gateway's CLI port (contract, section 4)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from .discovery import Offers, Orchestrator, parse_ai_capabilities, parse_network_capabilities, parse_registered
from .errors import GatewayReplyError, GatewayUnreachable
from .outcome import gateway_message

DISCOVERY_TIMEOUT_SECONDS = 30.0


class GatewayCli:
    """Asks a gateway's CLI port which orchestrators exist and what they serve."""

    def __init__(self, client: httpx.Client, endpoint: str) -> None:
        self._client = client
        self._endpoint = endpoint

    def registered_orchestrators(self) -> list[Orchestrator]:
        """Return the active orchestrators that have a service URI."""
        return parse_registered(self._get_json("/registeredOrchestrators"))

    def offers(self) -> Offers:
        """Return each orchestrator's models, from whichever capability endpoint the gateway has."""
        reply = self._get("/getOrchestratorAICapabilities")
        if reply.status_code == 404:  # a mainline gateway: fall back to its network view
            return parse_network_capabilities(self._get_json("/getNetworkCapabilities"))
        return parse_ai_capabilities(self._decode(reply, "/getOrchestratorAICapabilities"))

    def _get_json(self, path: str) -> Any:
        return self._decode(self._get(path), path)

    def _get(self, path: str) -> httpx.Response:
        url = self._endpoint + path
        try:
            return self._client.get(url, timeout=DISCOVERY_TIMEOUT_SECONDS)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise GatewayUnreachable(
                f"cannot reach the gateway's CLI port at {self._endpoint} ({exc}): "
                "is the gateway running, and is broadcasterCliEndpoint right?"
            ) from None
        except httpx.HTTPError as exc:
            raise GatewayReplyError(f"{path} on the gateway failed: {type(exc).__name__}: {exc}") from None

    @staticmethod
    def _decode(reply: httpx.Response, path: str) -> Any:
        if reply.status_code != 200:
            raise GatewayReplyError(
                f"the gateway answered {path} with HTTP {reply.status_code} ({gateway_message(reply.content)}); "
                "an off-chain gateway cannot list orchestrators"
                if path == "/registeredOrchestrators" and reply.status_code == 500
                else f"the gateway answered {path} with HTTP {reply.status_code} ({gateway_message(reply.content)})"
            )
        try:
            return json.loads(reply.content)
        except ValueError:
            raise GatewayReplyError(
                f"the gateway's {path} reply is not JSON ({gateway_message(reply.content, 80)})"
            ) from None
