"""Grounded inputs: what goes into a description or profile, and that nothing after the cut-off does."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.transforms.enrichment.data import CUTOFF, events, items, reviews, ts
from transforms.enrichment.extractive import ExtractiveGenerator
from transforms.enrichment.inputs import build_item_tasks, build_user_tasks, key_phrases


def _by_id(tasks):  # type: ignore[no-untyped-def]
    return {t.entity_id: t for t in tasks}


def test_user_profile_input_summarises_history_before_the_cutoff() -> None:
    users = _by_id(build_user_tasks(events(), reviews(), items(), CUTOFF))
    assert set(users) == {"u1", "u2"}  # carol (u3) only acts after the cut-off: no profile
    alice = users["u1"].payload
    assert alice["interactions"] == 4 and alice["purchases"] == 1
    assert alice["top_categories"][0] == {"name": "Outdoor > Tents", "weight": 6.0}  # click 1 + purchase 5
    assert [b["name"] for b in alice["top_brands"]] == ["Northpeak", "Cookwell"]
    assert alice["likes"] == ["Trail Tent"] and alice["dislikes"] == ["Chef Pan"]
    assert alice["intents"][0] == "considering Camp Stove"  # carted, not bought
    assert alice["last_active"] == "2026-01-08" and users["u1"].cutoff == CUTOFF
    assert alice["review_sentiment"] == "mixed" and alice["mean_review_rating"] == 3.5
    # nothing of what she did after the cut-off: the rain jacket and the stove review
    flat = str(alice)
    assert "Rain Jacket" not in flat and "Apparel" not in flat and "Broke" not in flat and "Drizzle" not in flat


def test_item_input_quotes_most_helpful_reviews_before_the_cutoff_only() -> None:
    tasks = _by_id(build_item_tasks(items(), reviews(), CUTOFF))
    tent = tasks["i1"].payload
    assert [r["title"] for r in tent["reviews"]] == ["Great tent", "Solid"]  # 4 helpful votes first
    assert "Ignore all previous instructions" not in str(tent)  # the injection sentence is gone
    assert tent["mean_rating"] == 4.5 and tent["review_count"] == 2
    stove = tasks["i2"].payload
    assert stove["review_count"] == 0 and stove["reviews"] == []  # its only review came after the cut-off
    assert "broke" not in str(stove).lower()


late_event = st.fixed_dictionaries(
    {
        "event_id": st.text("abcdef", min_size=1, max_size=6).map(lambda s: "late-" + s),
        "user_id": st.sampled_from(["u1", "u2", "u3"]),
        "ts": st.integers(0, 30 * 24).map(lambda h: CUTOFF + dt.timedelta(hours=h)),
        "event_type": st.sampled_from(["view", "click", "add_to_cart", "purchase", "skip"]),
        "item_id": st.sampled_from(["i1", "i2", "i3", "i4"]),
        "request_id": st.none(),
        "value": st.none(),
        "session_id": st.none(),
    }
)
late_review = st.fixed_dictionaries(
    {
        "review_id": st.text("abcdef", min_size=1, max_size=6).map(lambda s: "late-" + s),
        "user_id": st.sampled_from(["u1", "u2", "u3"]),
        "item_id": st.sampled_from(["i1", "i2", "i3", "i4"]),
        "ts": st.integers(0, 30 * 24).map(lambda h: CUTOFF + dt.timedelta(hours=h)),
        "rating": st.sampled_from([1.0, 3.0, 5.0]),
        "title": st.text(max_size=20),
        "text": st.text(max_size=60),
        "helpful_votes": st.integers(0, 100),
    }
)


@settings(max_examples=25, deadline=None)
@given(st.lists(late_event, max_size=8, unique_by=lambda e: e["event_id"]),
       st.lists(late_review, max_size=5, unique_by=lambda r: r["review_id"]))
def test_no_profile_or_description_reflects_anything_after_the_cutoff(later_events, later_reviews) -> None:  # type: ignore[no-untyped-def]
    """Leakage: adding any interactions or reviews at or after the cut-off changes no input, so no output."""
    base_users = build_user_tasks(events(), reviews(), items(), CUTOFF)
    more_users = build_user_tasks(events(later_events), reviews(later_reviews), items(), CUTOFF)
    assert [(t.entity_id, t.input_hash) for t in more_users] == [(t.entity_id, t.input_hash) for t in base_users]
    base_items = build_item_tasks(items(), reviews(), CUTOFF)
    more_items = build_item_tasks(items(), reviews(later_reviews), CUTOFF)
    assert [t.input_hash for t in more_items] == [t.input_hash for t in base_items]
    gen = ExtractiveGenerator()
    assert [o.output for o in gen.generate(more_users)] == [o.output for o in gen.generate(base_users)]


def test_an_earlier_interaction_does_change_the_profile() -> None:
    """The leakage test above could pass if inputs ignored events entirely: this one shows they do not."""
    before = _by_id(build_user_tasks(events(), reviews(), items(), CUTOFF))
    extra = [{"event_id": "x1", "user_id": "u2", "ts": ts(9), "event_type": "purchase", "item_id": "i3",
              "request_id": None, "value": None, "session_id": None}]
    after = _by_id(build_user_tasks(events(extra), reviews(), items(), CUTOFF))
    assert after["u2"].input_hash != before["u2"].input_hash
    assert after["u2"].payload["purchases"] == 2 and after["u1"].input_hash == before["u1"].input_hash


def test_key_phrases_rank_by_tfidf_and_are_deterministic() -> None:
    docs = {
        "tent": ["Easy setup, very waterproof.", "Waterproof and easy setup in rain."],
        "pan": ["Food sticks. Coating peeled.", "Coating peeled quickly."],
        "stove": ["Easy to light, great flame control."],
    }
    phrases = key_phrases(docs, 2)
    assert phrases == key_phrases(dict(reversed(list(docs.items()))), 2)
    assert phrases["tent"] == ["easy setup", "waterproof"]
    assert phrases["pan"] == ["coating peeled", "food sticks"]
    assert all(" " not in p or p.split(" ")[0] != "setup" for p in phrases["tent"])  # no bigram across a comma


def test_moving_the_cutoff_regenerates_only_users_active_in_between() -> None:
    """Nightly runs move the cut-off: bob did nothing between the two, so his input (and cache key) stay."""
    now = _by_id(build_user_tasks(events(), reviews(), items(), CUTOFF))
    later = _by_id(build_user_tasks(events(), reviews(), items(), CUTOFF + dt.timedelta(days=2, hours=13)))
    assert later["u2"].input_hash == now["u2"].input_hash
    assert later["u1"].input_hash != now["u1"].input_hash  # alice bought the rain jacket on the 11th
    assert "u3" in later and "u3" not in now


def test_an_item_without_a_catalog_row_is_described_from_its_reviews_before_the_cutoff() -> None:
    """A dataset of reviews without metadata (Amazon 2014's 5-core files) still gets item text: each reviewed
    item that the catalog lacks is described from its reviews alone, and only from those before the cut-off."""
    extra = [
        {"review_id": "v5", "user_id": "u2", "item_id": "i9", "ts": ts(6), "rating": 4.0, "title": "Good strings",
         "text": "Bright tone, and the strings stay in tune for weeks.", "helpful_votes": 2},
        {"review_id": "v6", "user_id": "u1", "item_id": "i8", "ts": ts(13), "rating": 5.0, "title": "Later",
         "text": "Written after the cut-off.", "helpful_votes": 0},  # i8 is known only after the cut-off
        {"review_id": "v7", "user_id": "u1", "item_id": "i7", "ts": ts(6), "rating": 3.0, "title": None, "text": None,
         "helpful_votes": 0},  # a rating without words describes nothing
    ]
    tasks = _by_id(build_item_tasks(items(), reviews(extra), CUTOFF))
    assert set(tasks) == {"i1", "i2", "i3", "i4", "i9"}
    strings = tasks["i9"].payload
    assert strings["review_count"] == 1 and strings["mean_rating"] == 4.0
    assert [r["title"] for r in strings["reviews"]] == ["Good strings"] and strings["key_phrases"]
    assert not strings["title"] and strings["brand"] is None and strings["categories"] == []
    (outcome,) = ExtractiveGenerator().generate([tasks["i9"]])
    assert outcome.ok and "strings" in outcome.output["description"]


def test_under_leave_one_out_the_held_out_interactions_leave_the_text() -> None:
    """Leave-one-out holds out each user's last two interactions whatever their date: their reviews must not
    describe the held-out items (nor the users), though they fall before the global cut-off."""
    from transforms.enrichment.inputs import without_held_out

    # the split's held-out steps (transforms.sequences.window.held_out_steps): u1's valid step i2 on day 7 and
    # test step i4; u2, with two interactions, holds nothing out
    held = pa.table({"user_id": ["u1", "u1"], "item_id": ["i2", "i4"], "horizon": pa.array([ts(7), ts(7)], pa.timestamp("ms", tz="UTC"))})
    extra = [
        {"review_id": "v5", "user_id": "u1", "item_id": "i2", "ts": ts(7), "rating": 5.0, "title": "Held out",
         "text": "Blue flame, boils fast.", "helpful_votes": 3},
        {"review_id": "v6", "user_id": "u1", "item_id": "i4", "ts": ts(6), "rating": 4.0, "title": "Early",
         "text": "Reviewed before the step it belongs to.", "helpful_votes": 0},  # an item held out for u1: dropped
        {"review_id": "v7", "user_id": "u2", "item_id": "i3", "ts": ts(6), "rating": 2.0, "title": "Kept",
         "text": "Scratches easily.", "helpful_votes": 0},
    ]
    kept = without_held_out(reviews(extra), held)
    assert sorted(kept["review_id"].to_pylist()) == ["v1", "v2", "v3", "v7"]  # v4 (day 12) is after u1's valid step too
    tasks = _by_id(build_item_tasks(items(), kept, CUTOFF))
    assert "Blue flame" not in str(tasks["i2"].payload) and tasks["i2"].payload["review_count"] == 0
    # Without a held-out step (temporal splits, or too few interactions) nothing is dropped.
    assert without_held_out(reviews(extra), held.slice(0, 0)).num_rows == 7
