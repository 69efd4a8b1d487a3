"""Discovery: which orchestrators exist and what they serve, in both capability shapes."""

from __future__ import annotations

import httpx
import pytest
import respx

from ai_job_tester.domain.discovery import (
    ModelOffer,
    Orchestrator,
    parse_ai_capabilities,
    parse_network_capabilities,
    parse_registered,
)
from ai_job_tester.errors import GatewayReplyError, GatewayUnreachable
from ai_job_tester.network.gateway import GatewayCli

CLI = "http://gateway:7935"

REGISTERED = [
    {"Address": "0xAAAA", "ServiceURI": "https://a:8935", "Active": True, "PricePerPixel": "3/2",
     "DelegatedStake": 123456789012345678901234567890, "DeactivationRound": 18446744073709551616},
    {"Address": "0xbbbb", "ServiceURI": "", "Active": True},
    {"Address": "0xcccc", "ServiceURI": "https://c:8935", "Active": False},
    {"Address": "0xdddd", "ServiceURI": None, "Active": True},
]  # fmt: skip

AI_CAPS = {
    "orchestrators": [
        {
            "address": "0xaaaa",
            "pipelines": [
                {"type": "Text to image", "models": [
                    {"name": "warm-model", "status": {"Cold": 0, "Warm": 1}},
                    {"name": "cold-model", "status": {"Cold": 1, "Warm": 0}},
                ]},
                {"type": "Llm", "models": [{"name": "llama"}]},
            ],
        }
    ]
}  # fmt: skip

NETWORK_CAPS = {
    "capabilities_names": {"27": "Text to image", "33": "Llm"},
    "orchestrators": [
        {
            "address": "0xAaAa",
            "orch_uri": "https://a:8935",
            "capabilities": {"constraints": {"PerCapability": {
                "27": {"models": {"warm-model": {"warm": True, "capacity": 1}, "cold-model": {"capacity": 1}}},
                "99": {"models": {"unnamed": {"warm": True}}},
            }}},
        },
        {"address": "0xEeEe", "capabilities": {}},
    ],
}  # fmt: skip


def test_only_active_orchestrators_with_a_service_uri_are_tested() -> None:
    assert parse_registered(REGISTERED) == [Orchestrator("0xaaaa", "https://a:8935")]


def test_tester_patch_capabilities_mark_warm_and_cold() -> None:
    offers = parse_ai_capabilities(AI_CAPS)
    assert offers["0xaaaa"] == (
        ModelOffer("Text to image", "warm-model", True),
        ModelOffer("Text to image", "cold-model", False),
        ModelOffer("Llm", "llama", False),
    )


def test_mainline_capabilities_match_addresses_case_insensitively_and_cold_has_no_warm_key() -> None:
    offers = parse_network_capabilities(NETWORK_CAPS)
    assert offers["0xaaaa"] == (
        ModelOffer("Text to image", "warm-model", True, capacity=1),
        ModelOffer("Text to image", "cold-model", False, capacity=1),
    )
    assert offers["0xeeee"] == ()


def test_same_model_on_two_runners_is_one_offer_and_warm_wins() -> None:
    raw = {"orchestrators": [{"address": "0xa", "pipelines": [
        {"type": "Upscale", "models": [{"name": "m", "status": {"Warm": 0}}]},
        {"type": "Upscale", "models": [{"name": "m", "status": {"Warm": 1}}]},
    ]}]}  # fmt: skip
    assert parse_ai_capabilities(raw)["0xa"] == (ModelOffer("Upscale", "m", True),)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"not": "a list"}, "reply has an unexpected shape at the top level"),
        ([{"ServiceURI": "x"}], "unexpected shape at 0.Address"),
    ],
)
def test_garbled_registered_reply_is_a_gateway_reply_error(raw: object, message: str) -> None:
    with pytest.raises(GatewayReplyError, match=message):
        parse_registered(raw)


@respx.mock
def test_capabilities_fall_back_to_network_capabilities_on_404() -> None:
    respx.get(f"{CLI}/getOrchestratorAICapabilities").respond(404, text="404 page not found")
    respx.get(f"{CLI}/getNetworkCapabilities").respond(200, json=NETWORK_CAPS)
    with httpx.Client() as client:
        offers = GatewayCli(client, CLI).offers()
    assert set(offers) == {"0xaaaa", "0xeeee"}


@respx.mock
def test_off_chain_gateway_500_says_so() -> None:
    respx.get(f"{CLI}/registeredOrchestrators").respond(500, text="no orchestrators: node is off-chain")
    with httpx.Client() as client, pytest.raises(GatewayReplyError, match=r"HTTP 500 .* off-chain gateway"):
        GatewayCli(client, CLI).registered_orchestrators()


@respx.mock
def test_html_reply_is_reported_not_parsed() -> None:
    respx.get(f"{CLI}/registeredOrchestrators").respond(200, text="<html><body>Bad gateway</body></html>")
    with httpx.Client() as client, pytest.raises(GatewayReplyError, match="reply is not JSON"):
        GatewayCli(client, CLI).registered_orchestrators()


@respx.mock
def test_unreachable_cli_port_names_the_setting() -> None:
    respx.get(f"{CLI}/registeredOrchestrators").mock(side_effect=httpx.ConnectError("refused"))
    with httpx.Client() as client, pytest.raises(GatewayUnreachable, match="broadcasterCliEndpoint"):
        GatewayCli(client, CLI).registered_orchestrators()


@respx.mock
def test_a_redirect_is_not_followed_but_reported() -> None:
    respx.get(f"{CLI}/registeredOrchestrators").respond(301, headers={"Location": "http://elsewhere/"})
    with httpx.Client() as client, pytest.raises(GatewayReplyError, match="HTTP 301"):
        GatewayCli(client, CLI).registered_orchestrators()


@respx.mock
def test_a_discovery_reply_past_the_size_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ai_job_tester.network.gateway.MAX_DISCOVERY_BYTES", 1000)
    respx.get(f"{CLI}/registeredOrchestrators").respond(200, content=b"[" + b" " * 5000 + b"]")
    with httpx.Client() as client, pytest.raises(GatewayReplyError, match="reply is larger than 1000 bytes"):
        GatewayCli(client, CLI).registered_orchestrators()
