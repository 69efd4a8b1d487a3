"""Turn the gateway's discovery replies into orchestrators and the models they offer.

Pure parsing: the HTTP calls live in ``gateway.py``. Both capability shapes of the
contract (section 4) are understood: the tester-patch ``/getOrchestratorAICapabilities``
and mainline's ``/getNetworkCapabilities``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ..errors import GatewayReplyError
from .routes import is_live_capability
from .text import first_error, printable


@dataclass(frozen=True, slots=True)
class Orchestrator:
    """An active orchestrator the tester can point the gateway at."""

    address: str
    service_uri: str


@dataclass(frozen=True, slots=True)
class ModelOffer:
    """One model an orchestrator serves for one capability."""

    capability: str
    model: str
    warm: bool
    capacity: int | None = None  # idle slots, where the gateway says (live video)


Offers = dict[str, tuple[ModelOffer, ...]]
"""Lower-case orchestrator address -> the models it offers."""

# What an orchestrator registers and reports is its own choice, so hostile: whatever
# cannot make a valid leaderboard row, or be stored faithfully, is skipped at planning.
MAX_NAME_CHARS = 256
"""The longest capability or model name tested (Hugging Face ids are at most 96)."""
MAX_SERVICE_URI_CHARS = 2048
_ADDRESS = re.compile("0x[0-9a-f]{40}")
_UNSTORABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SHOWN = re.compile("[^0-9A-Za-z._:/-]")


def orchestrator_problem(orch: Orchestrator) -> str | None:
    """Why no row could be posted for this orchestrator, or None when one can."""
    if not _ADDRESS.fullmatch(orch.address):
        return "its address is not a 0x address of 40 hex digits (the leaderboard could not take it)"
    uri = orch.service_uri
    if len(uri) > MAX_SERVICE_URI_CHARS:
        return f"its service URI is longer than {MAX_SERVICE_URI_CHARS} characters"
    if _UNSTORABLE.search(uri) or any(char.isspace() for char in uri):
        return "its service URI contains spaces or control characters"
    try:
        parts = urlsplit(uri)
        _ = parts.port
    except ValueError:
        return "its service URI is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "its service URI is not an absolute http:// or https:// URL"
    return None


def name_problem(kind: str, name: str) -> str | None:
    """Why a capability or model name cannot be tested and stored faithfully, or None."""
    if not name:
        return f"the gateway reported an empty {kind} name"
    if len(name) > MAX_NAME_CHARS:
        return f"the {kind} name is longer than {MAX_NAME_CHARS} characters"
    if _UNSTORABLE.search(name):
        return f"the {kind} name contains NUL, control characters or lone surrogates"
    return None


def shown(text: str, limit: int = 60) -> str:
    """A hostile identifier cut down to characters that are inert in any output, for listing it."""
    cut = _SHOWN.sub("?", text[:limit])
    return cut + "…" if len(text) > limit else cut


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RegisteredOrchestrator(_Lenient):
    """One entry of ``/registeredOrchestrators`` (Go field names)."""

    Address: str
    ServiceURI: str | None = ""
    Active: bool = False
    # Stake and round numbers can exceed 2^64; they are kept as whatever JSON gave.
    PricePerPixel: str | int | float | None = None


class _ModelStatus(_Lenient):
    Cold: int = 0
    Warm: int = 0


class _AIModel(_Lenient):
    name: str
    status: _ModelStatus = Field(default_factory=_ModelStatus)


class _AIPipeline(_Lenient):
    type: str
    models: list[_AIModel] | None = None


class _AIOrchestrator(_Lenient):
    address: str
    pipelines: list[_AIPipeline] | None = None


class AICapabilities(_Lenient):
    """``/getOrchestratorAICapabilities`` (tester-patch gateways)."""

    orchestrators: list[_AIOrchestrator] | None = None


class _NetModel(_Lenient):
    warm: bool = False  # a cold model has no "warm" key at all
    capacity: int | None = None  # idle slots


class _NetCapability(_Lenient):
    models: dict[str, _NetModel] | None = None


class _NetConstraints(_Lenient):
    PerCapability: dict[str, _NetCapability] | None = None


class _NetCapabilities(_Lenient):
    constraints: _NetConstraints | None = None


class _NetOrchestrator(_Lenient):
    address: str
    capabilities: _NetCapabilities | None = None


class NetworkCapabilities(_Lenient):
    """``/getNetworkCapabilities`` (mainline gateways, v0.8.5+)."""

    capabilities_names: dict[str, str] = Field(default_factory=dict)
    orchestrators: list[_NetOrchestrator] | None = None


_REGISTERED = TypeAdapter(list[RegisteredOrchestrator])
_AI = TypeAdapter(AICapabilities)
_NETWORK = TypeAdapter(NetworkCapabilities)


def _validate(adapter: TypeAdapter[Any], raw: Any, what: str) -> Any:
    try:
        return adapter.validate_python(raw)
    except ValidationError as exc:
        where, message = first_error(exc)
        raise GatewayReplyError(
            f"the gateway's {what} reply has an unexpected shape at {where or 'the top level'}: {printable(message)}"
        ) from None


def parse_registered(raw: Any) -> list[Orchestrator]:
    """Return the active orchestrators with a service URI, addresses lower-cased, first seen wins."""
    entries: list[RegisteredOrchestrator] = _validate(_REGISTERED, raw, "/registeredOrchestrators")
    seen: dict[str, Orchestrator] = {}
    for entry in entries:
        uri = (entry.ServiceURI or "").strip()
        address = entry.Address.strip().lower()
        if entry.Active and uri and address not in seen:
            seen[address] = Orchestrator(address=address, service_uri=uri)
    return list(seen.values())


def parse_ai_capabilities(raw: Any) -> Offers:
    """Parse the tester-patch capability shape; a model is warm when any runner has it warm."""
    reply: AICapabilities = _validate(_AI, raw, "/getOrchestratorAICapabilities")
    offers: dict[str, list[ModelOffer]] = {}
    for orch in reply.orchestrators or ():
        bucket = offers.setdefault(orch.address.strip().lower(), [])
        for pipeline in orch.pipelines or ():
            bucket.extend(
                ModelOffer(capability=pipeline.type, model=model.name, warm=model.status.Warm > 0)
                for model in pipeline.models or ()
            )
    return _freeze(offers)


def parse_network_capabilities(raw: Any) -> Offers:
    """Parse mainline's capability shape; capability ids are named through ``capabilities_names``."""
    reply: NetworkCapabilities = _validate(_NETWORK, raw, "/getNetworkCapabilities")
    offers: dict[str, list[ModelOffer]] = {}
    for orch in reply.orchestrators or ():
        bucket = offers.setdefault(orch.address.strip().lower(), [])
        constraints = orch.capabilities.constraints if orch.capabilities else None
        for cap_id, capability in ((constraints.PerCapability if constraints else None) or {}).items():
            name = reply.capabilities_names.get(cap_id)
            if name is None:
                continue  # a capability this gateway cannot name is not one we can route to
            bucket.extend(
                ModelOffer(capability=name, model=model, warm=spec.warm, capacity=spec.capacity)
                for model, spec in (capability.models or {}).items()
            )
    return _freeze(offers)


def _freeze(offers: dict[str, list[ModelOffer]]) -> Offers:
    return {address: _dedupe(models) for address, models in offers.items()}


def _dedupe(models: Iterable[ModelOffer]) -> tuple[ModelOffer, ...]:
    # The same model on two runners of one orchestrator is one job; warm wins.
    merged: dict[tuple[str, str], ModelOffer] = {}
    for offer in models:
        key = (offer.capability, offer.model)
        previous = merged.get(key)
        if previous is None or (offer.warm and not previous.warm):
            merged[key] = offer
    return tuple(merged.values())


def merge_live_offers(offers: Offers, live: Offers) -> Offers:
    """Batch offers from the capabilities reply, live ones (with capacity) from the network view."""
    merged = {address: tuple(o for o in found if not is_live_capability(o.capability))
              for address, found in offers.items()}  # fmt: skip
    for address, found in live.items():
        merged[address] = merged.get(address, ()) + found
    return merged
