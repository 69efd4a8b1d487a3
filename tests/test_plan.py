"""Planning: offers matched to configured pipelines by route; filters; what is skipped and why."""

from __future__ import annotations

from ai_job_tester.config import load_config
from ai_job_tester.domain.discovery import ModelOffer, Orchestrator
from ai_job_tester.domain.plan import NO_LIVE_BLOCK, Filters, Pipeline, Variant, build_plan

from .conftest import GO_CONFIG

A = Orchestrator("0xaaaa", "https://a:8935")
B = Orchestrator("0xbbbb", "https://b:8935")
OFFERS = {
    "0xaaaa": (
        ModelOffer("Text to image", "sdxl", True),
        ModelOffer("Llm", "llama", False),
        ModelOffer("Live video to video", "comfyui", True),
        ModelOffer("Some future pipeline", "x", True),
    ),
    "0xbbbb": (ModelOffer("Text to image", "sdxl", False),),
}


def plan(filters: Filters | None = None):  # type: ignore[no-untyped-def]
    filters = filters or Filters()
    return build_plan([A, B], OFFERS, load_config(GO_CONFIG).pipeline_specs(), filters)


def test_pipelines_match_by_route_not_display_name() -> None:
    # The Go config calls the LLM pipeline "Large language model"; the gateway says "Llm".
    jobs = plan().jobs
    assert [(j.orchestrator.address, j.capability, j.model, j.warm) for j in jobs] == [
        ("0xaaaa", "Text to image", "sdxl", True),
        ("0xaaaa", "Llm", "llama", False),
        ("0xbbbb", "Text to image", "sdxl", False),
    ]
    assert jobs[1].pipeline.name == "Large language model"


def test_live_video_and_unconfigured_offers_are_skipped_with_a_reason() -> None:
    reasons = {(s.capability, s.reason) for s in plan().skipped}
    assert reasons == {
        ("Live video to video", "no pipeline with this route in the config"),
        ("Some future pipeline", "no pipeline with this route in the config"),
    }


def test_an_orchestrator_without_capabilities_is_listed() -> None:
    c = Orchestrator("0xcccc", "https://c:8935")
    result = build_plan([c], OFFERS, load_config(GO_CONFIG).pipeline_specs())
    assert result.jobs == () and result.skipped[0].reason == "reported no AI capabilities"


def test_filters_limit_by_orchestrator_uri_pipeline_route_and_model() -> None:
    assert [j.model for j in plan(Filters(orchestrators=("https://a:8935/",))).jobs] == ["sdxl", "llama"]
    assert [j.orchestrator.address for j in plan(Filters(orchestrators=("0xBBBB",))).jobs] == ["0xbbbb"]
    assert [j.capability for j in plan(Filters(pipelines=("llm",))).jobs] == ["Llm"]
    assert len(plan(Filters(pipelines=("Text to image",))).jobs) == 2
    assert [j.model for j in plan(Filters(models=("llama",))).jobs] == ["llama"]


def test_every_orchestrator_gets_one_job_per_configured_offer() -> None:
    many = [Orchestrator(f"0x{i:040x}", f"https://o{i}:8935") for i in range(200)]
    offers = {o.address: OFFERS["0xaaaa"] for o in many}
    assert len(build_plan(many, offers, load_config(GO_CONFIG).pipeline_specs()).jobs) == 400


def test_a_live_offer_becomes_one_job_per_prompt_variant_when_live_video_is_set_up() -> None:
    live = Pipeline("Live", "live-video-to-video", "application/json", {}, "model_id", "image", None, 120.0,
                    is_live=True, variants=(Variant("a"), Variant("b", "high")))  # fmt: skip
    offers = {"0xaaaa": (ModelOffer("Live video to video", "comfyui", True, capacity=1),)}
    jobs = build_plan([A], offers, [live], live_blocked=None).jobs
    assert [(j.model, j.variant.id if j.variant else None) for j in jobs] == [("comfyui", "a"), ("comfyui", "b")]
    skipped = build_plan([A], offers, [live], live_blocked=NO_LIVE_BLOCK).skipped
    assert [s.reason for s in skipped] == ["live video needs a liveVideo block in the config"]
