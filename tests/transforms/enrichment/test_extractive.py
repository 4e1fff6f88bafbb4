"""The extractive default: deterministic, labelled, schema-valid."""

from __future__ import annotations

from tests.transforms.enrichment.data import CUTOFF, events, items, reviews
from transforms.enrichment.extractive import EXTRACTIVE_MODEL, ExtractiveGenerator
from transforms.enrichment.inputs import build_item_tasks, build_user_tasks
from transforms.enrichment.types import GeneratorKind, ItemDescription, UserProfile


def test_descriptions_are_grounded_labelled_and_deterministic() -> None:
    tasks = build_item_tasks(items(), reviews(), CUTOFF)
    gen = ExtractiveGenerator()
    first, second = gen.generate(tasks), gen.generate(tasks)
    assert first == second
    assert gen.kind is GeneratorKind.EXTRACTIVE and gen.model == EXTRACTIVE_MODEL
    tent = next(o for o in first if o.entity_id == "i1").output
    assert tent is not None
    ItemDescription.model_validate(tent)
    assert tent["description"].startswith("(extractive) Trail Tent by Northpeak, in Outdoor > Tents, priced 129.99.")
    assert "easy setup" in tent["description"] and "waterproof" in tent["highlights"]


def test_profiles_state_likes_dislikes_and_intents() -> None:
    out = {o.entity_id: o.output for o in ExtractiveGenerator().generate(build_user_tasks(events(), reviews(), items(), CUTOFF))}
    alice = out["u1"]
    assert alice is not None
    UserProfile.model_validate(alice)
    assert alice["profile"].startswith("(extractive) Before the cut-off: 4 interactions, 1 purchase.")
    assert "Trail Tent" in alice["likes"] and alice["dislikes"] == ["Chef Pan"]
    assert alice["intents"][0] == "considering Camp Stove"


def test_a_broken_payload_is_a_failure_not_an_exception() -> None:
    task = build_item_tasks(items(), reviews(), CUTOFF)[0]
    broken = type(task)(task.entity, task.entity_id, {"title": "no id"}, task.input_hash)
    (outcome,) = ExtractiveGenerator().generate([broken])
    assert not outcome.ok and outcome.failure_kind == "input"
