"""The extractive default: deterministic, labelled, schema-valid."""

from __future__ import annotations

import pyarrow as pa

from tests.transforms.enrichment.data import CUTOFF, events, items, reviews, ts
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


def test_a_movie_keeps_every_genre_and_its_tags_are_not_counted_as_reviews() -> None:
    """MovieLens shape: three genres; two ratings (no text) and three tags (no rating), no written review."""
    movie = items().slice(0, 1).to_pylist()[0] | {"item_id": "m1", "title": "Heat (1995)", "categories": ["Action", "Crime", "Thriller"]}
    catalog = pa.Table.from_pylist([movie], schema=items().schema)

    def review(rid: str, rating: float | None, text: str | None) -> dict:
        return {"review_id": rid, "user_id": "u1", "item_id": "m1", "ts": ts(3), "rating": rating, "title": None,
                "text": text, "helpful_votes": None}

    rows = [review("r1", 5.0, None), review("r2", 4.0, None),
            review("t1", None, "heist"), review("t2", None, "heist"), review("t3", None, "Al Pacino")]
    (task,) = build_item_tasks(catalog, pa.Table.from_pylist(rows, schema=reviews().schema), CUTOFF)
    assert task.payload["categories"] == ["Action", "Crime", "Thriller"]
    assert task.payload["review_count"] == 0 and task.payload["rating_count"] == 2 and task.payload["tag_count"] == 3
    (outcome,) = ExtractiveGenerator().generate([task])
    text = outcome.output["description"]  # type: ignore[index]
    assert "in Action, Crime and Thriller" in text
    assert "Rated 4.5/5 over 2 ratings." in text and "Tagged: heist, al pacino." in text
    assert "review" not in text.lower().replace("reviewers", "")
