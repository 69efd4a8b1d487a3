"""Every job varies what a cache would key on (seed, prompt, question, text), and records exactly what it sent."""

from __future__ import annotations

import json
import random
from contextlib import ExitStack
from typing import Any

import pytest
from requests_toolbelt.multipart.decoder import MultipartDecoder

from ai_job_tester.config import parse_config
from ai_job_tester.domain.variation import SEED_BITS, suffix, unvaried, vary
from ai_job_tester.network.jobs import prepare

from .conftest import GO_CONFIG
from .test_jobs import body_of, config, job_for

QUESTION = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "How long is an address?"}]


@pytest.mark.parametrize(
    ("route", "params", "changed"),
    [
        ("text-to-image", {"prompt": "a bear", "width": 512}, {"seed", "prompt"}),
        ("image-to-image", {"prompt": "a bear", "strength": 1}, {"seed", "prompt"}),
        ("upscale", {"prompt": "a bear"}, {"seed", "prompt"}),
        ("image-to-video", {"fps": 8}, {"seed"}),
        ("image-to-text", {"prompt": "Describe this image."}, {"prompt"}),
        ("text-to-speech", {"text": "Hello.", "description": "calm"}, {"text"}),
        ("llm", {"messages": QUESTION, "max_tokens": 9}, {"messages"}),
        ("llm", {"prompt": "How long is an address?"}, {"prompt"}),  # the pre-0.8.3 multipart form
        ("audio-to-text", {"return_timestamps": "true"}, set()),
        ("segment-anything-2", {"box": "[1, 2, 3, 4]"}, set()),
    ],
)
def test_each_route_varies_only_the_fields_it_takes(route: str, params: dict[str, Any], changed: set[str]) -> None:
    """A fresh seed where the route takes one, a suffix on the text it reads; nothing else changes or appears."""
    varied = vary(route, params, random.Random(1))
    assert {key for key in varied.parameters if varied.parameters[key] != params.get(key)} == changed
    assert varied.fresh == bool(changed)
    assert params == dict(params)  # the config's own mapping is left alone


def test_two_jobs_never_send_the_same_request() -> None:
    """Two draws give different seeds and suffixes; the same random source gives the same request (testable)."""
    chance = random.Random(7)
    first, second = (vary("text-to-image", {"prompt": "a bear"}, chance) for _ in range(2))
    assert first.parameters["seed"] != second.parameters["seed"]
    assert first.parameters["prompt"] != second.parameters["prompt"]
    assert vary("text-to-image", {"prompt": "a bear"}, random.Random(7)) == first
    assert 0 <= first.parameters["seed"] < 2**SEED_BITS


def test_the_suffix_is_short_so_the_work_stays_the_same_size() -> None:
    """A prompt grows by 15 characters at most: no more steps, pixels or tokens asked for."""
    assert len(suffix(2**32 - 1)) == 15 and suffix(0xAB) == " (ref 000000ab)"


def test_the_llm_varies_its_last_user_message_and_keeps_the_others() -> None:
    """The system prompt stays; the question a model answers changes; the config's list is not mutated."""
    messages = [dict(m) for m in QUESTION]
    varied = vary("llm", {"messages": messages}, random.Random(2))
    sent = varied.parameters["messages"]
    assert sent[0] == QUESTION[0] and sent[1]["content"].startswith("How long is an address? (ref ")
    assert messages == QUESTION and varied.texts == ("messages",)


def test_a_text_the_config_left_out_is_not_added() -> None:
    """image-to-text without a prompt sends none: the request is not fresh, and replay checks skip it."""
    varied = vary("image-to-text", {"model_id": "blip"}, random.Random(3))
    assert varied.parameters == {"model_id": "blip"} and not varied.fresh


def test_unvaried_parameters_are_sent_as_configured() -> None:
    """``vary: false`` is the same request every time: never evidence of a replay."""
    assert unvaried({"seed": 4, "prompt": "a bear"}) == unvaried({"seed": 4, "prompt": "a bear"})
    assert not unvaried({"seed": 4}).fresh


def test_input_parameters_record_exactly_what_a_json_job_sent() -> None:
    """The seed and the suffixed prompt the gateway got are what the row carries."""
    cfg = config()
    with ExitStack() as files:
        prepared = prepare(job_for(cfg, "text-to-image"), cfg.lanes[0], files, chance=random.Random(5))
        sent = json.loads(body_of(prepared.request))
    assert json.loads(prepared.input_parameters) == sent
    assert sent["prompt"].startswith("a bear (ref ") and isinstance(sent["seed"], int)
    assert prepared.varied.seeded and prepared.varied.texts == ("prompt",)


def test_input_parameters_record_exactly_what_a_multipart_job_sent() -> None:
    """Form values are strings on the wire; the recorded seed and prompt are the ones in the form."""
    cfg = config()
    with ExitStack() as files:
        prepared = prepare(job_for(cfg, "image-to-image"), cfg.lanes[0], files, chance=random.Random(6))
        raw = body_of(prepared.request)
    decoder = MultipartDecoder(raw, prepared.request.headers["Content-Type"])
    form = {p.headers[b"Content-Disposition"].decode().split('name="')[1].split('"')[0]: p for p in decoder.parts}
    recorded = json.loads(prepared.input_parameters)
    assert form["seed"].text == str(recorded["seed"]) and form["prompt"].text == recorded["prompt"]


def test_vary_false_sends_the_configured_parameters() -> None:
    """A pipeline with ``vary: false`` sends its parameters unchanged, a configured seed included."""
    raw = json.loads(GO_CONFIG.read_text())
    first = next(p for p in raw["pipelines"] if p["uri"].strip("/") == "text-to-image")
    first.update(vary=False, parameters={**first["parameters"], "seed": 42})
    cfg = parse_config(raw, source=GO_CONFIG)
    with ExitStack() as files:
        prepared = prepare(job_for(cfg, "text-to-image"), cfg.lanes[0], files, chance=random.Random(8))
    recorded = json.loads(prepared.input_parameters)
    assert recorded["seed"] == 42 and recorded["prompt"] == first["parameters"]["prompt"]
    assert not prepared.varied.fresh
