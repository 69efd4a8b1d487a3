"""Discovery calls to the gateway's CLI port (contract, section 4)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import httpx

from ..domain.discovery import Offers, Orchestrator, parse_ai_capabilities, parse_network_capabilities, parse_registered
from ..domain.routes import is_live_capability
from ..domain.text import NestedTooDeep, gateway_message, loads_untrusted
from ..errors import GatewayReplyError, GatewayUnreachable
from .deadline import DeadlineExceeded, within

DISCOVERY_TIMEOUT_SECONDS = 30.0
"""One discovery request, whole: connect, headers and body together."""
MAX_DISCOVERY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Reply:
    status_code: int
    body: bytes


def accepts_connections(endpoint: str, timeout: float = 2.0) -> bool:
    """Tell whether anything listens at an endpoint's host and port (no request is sent)."""
    url = httpx.URL(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


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

    def live_offers(self) -> Offers:
        """Return each orchestrator's live video selectors with their idle capacity (mainline's view)."""
        reply = self._get("/getNetworkCapabilities")
        if reply.status_code == 404:
            return {}
        offers = parse_network_capabilities(self._decode(reply, "/getNetworkCapabilities"))
        return {
            address: tuple(o for o in found if is_live_capability(o.capability)) for address, found in offers.items()
        }

    def live_capacity(self) -> dict[tuple[str, str], int]:
        """Fresh idle capacity per (orchestrator, selector); empty when the gateway cannot say.

        Raises ``GatewayUnreachable``: a gateway that is gone must stop the live jobs, not fail them.
        """
        try:
            offers = self.live_offers()
        except GatewayReplyError:
            return {}
        return {
            (address, o.model): o.capacity for address, found in offers.items() for o in found if o.capacity is not None
        }

    def _get_json(self, path: str) -> Any:
        return self._decode(self._get(path), path)

    def _get(self, path: str) -> _Reply:
        try:
            return within(DISCOVERY_TIMEOUT_SECONDS, lambda: self._get_now(path), what=f"{path} on the gateway")
        except DeadlineExceeded:
            raise GatewayReplyError(
                f"the gateway's {path} reply did not finish within {DISCOVERY_TIMEOUT_SECONDS:g} s"
            ) from None

    def _get_now(self, path: str) -> _Reply:
        url = self._endpoint + path
        try:
            with self._client.stream("GET", url, timeout=DISCOVERY_TIMEOUT_SECONDS) as reply:
                body = bytearray()
                for chunk in reply.iter_bytes():
                    body += chunk
                    if len(body) > MAX_DISCOVERY_BYTES:
                        raise GatewayReplyError(
                            f"the gateway's {path} reply is larger than {MAX_DISCOVERY_BYTES} bytes"
                        )
                return _Reply(reply.status_code, bytes(body))
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise GatewayUnreachable(
                f"cannot reach the gateway's CLI port at {self._endpoint} ({exc}): "
                "is the gateway running, and is broadcasterCliEndpoint right?"
            ) from None
        except httpx.HTTPError as exc:
            raise GatewayReplyError(f"{path} on the gateway failed: {type(exc).__name__}: {exc}") from None

    @staticmethod
    def _decode(reply: _Reply, path: str) -> Any:
        if reply.status_code != 200:
            raise GatewayReplyError(
                f"the gateway answered {path} with HTTP {reply.status_code} ({gateway_message(reply.body)}); "
                "an off-chain gateway cannot list orchestrators"
                if path == "/registeredOrchestrators" and reply.status_code == 500
                else f"the gateway answered {path} with HTTP {reply.status_code} ({gateway_message(reply.body)})"
            )
        try:
            return loads_untrusted(reply.body)
        except NestedTooDeep as exc:
            raise GatewayReplyError(f"the gateway's {path} reply is not JSON the tester accepts ({exc})") from None
        except ValueError:
            raise GatewayReplyError(
                f"the gateway's {path} reply is not JSON ({gateway_message(reply.body, 80)})"
            ) from None
