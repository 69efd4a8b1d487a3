"""Planning: offers matched to configured pipelines by route; filters; what is skipped and why."""

from __future__ import annotations

import pytest

from ai_job_tester.config import load_config
from ai_job_tester.domain.discovery import ModelOffer, Orchestrator
from ai_job_tester.domain.plan import NO_LIVE_BLOCK, Filters, Pipeline, Variant, build_plan

from .conftest import GO_CONFIG

A_ADDRESS, B_ADDRESS, C_ADDRESS = ("0x" + letter * 40 for letter in "abc")
A = Orchestrator(A_ADDRESS, "https://a:8935")
B = Orchestrator(B_ADDRESS, "https://b:8935")
OFFERS = {
    A_ADDRESS: (
        ModelOffer("Text to image", "sdxl", True),
        ModelOffer("Llm", "llama", False),
        ModelOffer("Live video to video", "comfyui", True),
        ModelOffer("Some future pipeline", "x", True),
    ),
    B_ADDRESS: (ModelOffer("Text to image", "sdxl", False),),
}


def plan(filters: Filters | None = None):  # type: ignore[no-untyped-def]
    filters = filters or Filters()
    return build_plan([A, B], OFFERS, load_config(GO_CONFIG).pipeline_specs(), filters)


def test_pipelines_match_by_route_not_display_name() -> None:
    # The Go config calls the LLM pipeline "Large language model"; the gateway says "Llm".
    jobs = plan().jobs
    assert [(j.orchestrator.address, j.capability, j.model, j.warm) for j in jobs] == [
        (A_ADDRESS, "Text to image", "sdxl", True),
        (A_ADDRESS, "Llm", "llama", False),
        (B_ADDRESS, "Text to image", "sdxl", False),
    ]
    assert jobs[1].pipeline.name == "Large language model"


def test_live_video_and_unconfigured_offers_are_skipped_with_a_reason() -> None:
    reasons = {(s.capability, s.reason) for s in plan().skipped}
    assert reasons == {
        ("Live video to video", "no pipeline with this route in the config"),
        ("Some future pipeline", "no pipeline with this route in the config"),
    }


def test_an_orchestrator_without_capabilities_is_listed() -> None:
    c = Orchestrator(C_ADDRESS, "https://c:8935")
    result = build_plan([c], OFFERS, load_config(GO_CONFIG).pipeline_specs())
    assert result.jobs == () and result.skipped[0].reason == "reported no AI capabilities"


def test_filters_limit_by_orchestrator_uri_pipeline_route_and_model() -> None:
    assert [j.model for j in plan(Filters(orchestrators=("https://a:8935/",))).jobs] == ["sdxl", "llama"]
    assert [j.orchestrator.address for j in plan(Filters(orchestrators=(B_ADDRESS.upper(),))).jobs] == [B_ADDRESS]
    assert [j.capability for j in plan(Filters(pipelines=("llm",))).jobs] == ["Llm"]
    assert len(plan(Filters(pipelines=("Text to image",))).jobs) == 2
    assert [j.model for j in plan(Filters(models=("llama",))).jobs] == ["llama"]


def test_every_orchestrator_gets_one_job_per_configured_offer() -> None:
    many = [Orchestrator(f"0x{i:040x}", f"https://o{i}:8935") for i in range(200)]
    offers = {o.address: OFFERS[A_ADDRESS] for o in many}
    assert len(build_plan(many, offers, load_config(GO_CONFIG).pipeline_specs()).jobs) == 400


def test_a_live_offer_becomes_one_job_per_prompt_variant_when_live_video_is_set_up() -> None:
    live = Pipeline("Live", "live-video-to-video", "application/json", {}, "model_id", "image", None, 120.0,
                    is_live=True, variants=(Variant("a"), Variant("b", "high")))  # fmt: skip
    offers = {A_ADDRESS: (ModelOffer("Live video to video", "comfyui", True, capacity=1),)}
    jobs = build_plan([A], offers, [live], live_blocked=None).jobs
    assert [(j.model, j.variant.id if j.variant else None) for j in jobs] == [("comfyui", "a"), ("comfyui", "b")]
    skipped = build_plan([A], offers, [live], live_blocked=NO_LIVE_BLOCK).skipped
    assert [s.reason for s in skipped] == ["live video needs a liveVideo block in the config"]


# Discovery data is the orchestrators' own choice: what cannot make a valid row is skipped
# here, with a reason, before any job runs (a refused row used to stop the cycle after one).
BAD_ORCHESTRATORS = {
    "an address of 57 characters": (Orchestrator("0x" + "a" * 55, "https://x:8935"), "its address is not a 0x address"),
    "39 hex digits": (Orchestrator("0x" + "a" * 39, "https://x:8935"), "its address is not a 0x address"),
    "not hex": (Orchestrator("0x" + "g" * 40, "https://x:8935"), "its address is not a 0x address"),
    "no 0x": (Orchestrator("a" * 42, "https://x:8935"), "its address is not a 0x address"),
    "a relative URI": (Orchestrator(A_ADDRESS, "orch:8935"), "its service URI is not an absolute http"),
    "another scheme": (Orchestrator(A_ADDRESS, "file:///etc/passwd"), "its service URI is not an absolute http"),
    "a bad port": (Orchestrator(A_ADDRESS, "https://x:99999"), "its service URI is not a valid URL"),
    "a newline": (Orchestrator(A_ADDRESS, "https://x:8935\nX-Forged: 1"), "its service URI contains spaces or"),
    "a huge URI": (Orchestrator(A_ADDRESS, "https://x/" + "a" * 3000), "its service URI is longer than 2048"),
}


@pytest.mark.parametrize(("orch", "reason"), BAD_ORCHESTRATORS.values(), ids=BAD_ORCHESTRATORS.keys())
def test_an_orchestrator_that_cannot_make_a_valid_row_is_skipped_at_planning(orch: Orchestrator, reason: str) -> None:
    offers = {orch.address: OFFERS[A_ADDRESS], B_ADDRESS: OFFERS[B_ADDRESS]}
    result = build_plan([orch, B], offers, load_config(GO_CONFIG).pipeline_specs())
    assert [job.orchestrator for job in result.jobs] == [B]  # the others are still tested
    assert result.orchestrators == (B,)
    [skipped] = result.skipped
    assert skipped.reason.startswith(reason) and (skipped.capability, skipped.model) == ("-", "-")
    assert len(skipped.orchestrator) <= 61 and "\n" not in skipped.orchestrator


UNSTORABLE = "name contains NUL, control characters or lone surrogates"
BAD_NAMES = {
    "NUL in a model": ("Text to image", "sdxl\x00", f"the model {UNSTORABLE}"),
    "a lone surrogate": ("Text to image", "sdxl\udc80", f"the model {UNSTORABLE}"),
    "an escape sequence": ("Text to image", "\x1b[2Jsdxl", f"the model {UNSTORABLE}"),
    "a 300-character model": ("Text to image", "m" * 300, "the model name is longer than 256 characters"),
    "an empty model": ("Text to image", "", "the gateway reported an empty model name"),
    "a control character in a capability": ("Text\rto image", "sdxl", f"the capability {UNSTORABLE}"),
}


@pytest.mark.parametrize(("capability", "model", "reason"), BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_a_name_the_leaderboard_could_not_store_faithfully_is_skipped(capability: str, model: str, reason: str) -> None:
    offers = {A_ADDRESS: (ModelOffer(capability, model, True), ModelOffer("Llm", "llama", True))}
    result = build_plan([A], offers, load_config(GO_CONFIG).pipeline_specs())
    assert [job.model for job in result.jobs] == ["llama"]
    [skipped] = result.skipped
    assert skipped.reason == reason
    assert skipped.model.isprintable() and skipped.capability.isprintable() and len(skipped.model) <= 81


def test_a_model_name_of_256_printable_characters_is_tested() -> None:
    offers = {A_ADDRESS: (ModelOffer("Text to image", "ü/" + "m" * 254, True),)}
    assert len(build_plan([A], offers, load_config(GO_CONFIG).pipeline_specs()).jobs) == 1


def test_a_plan_knows_when_orchestrators_exist_but_nothing_can_be_tested() -> None:
    specs = load_config(GO_CONFIG).pipeline_specs()
    no_pipelines = build_plan([A], {A_ADDRESS: ()}, specs)  # capabilities with null pipelines
    assert no_pipelines.has_nothing_to_test and no_pipelines.skipped[0].reason == "reported no AI capabilities"
    all_invalid = build_plan([Orchestrator("0xbad", "https://x:8935")], {}, specs)
    assert all_invalid.has_nothing_to_test and all_invalid.orchestrators == ()
    assert not build_plan([], {}, specs).has_nothing_to_test  # no orchestrator at all: another story
    assert not plan().has_nothing_to_test
