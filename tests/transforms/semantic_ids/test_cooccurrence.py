"""Co-occurrence embeddings for items without catalog text: training window only, deterministic."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from transforms.semantic_ids.cooccurrence import CooccurrenceConfig, cooccurrence_embeddings
from transforms.semantic_ids.inputs import EmbeddingSource, ItemEmbeddings, with_items_without_text

CUTOFF = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def _events(histories: dict[str, list[str]], day: int = 1) -> pa.Table:
    """One event a minute per user, in list order, from ``day`` February (or March when day > 28)."""
    start = dt.datetime(2026, 2, 1, tzinfo=dt.UTC) + dt.timedelta(days=day - 1)
    rows = [
        {"user_id": u, "item_id": item, "ts": start + dt.timedelta(minutes=i)}
        for u, items in histories.items() for i, item in enumerate(items)
    ]
    return pa.Table.from_pylist(rows, schema=pa.schema([("user_id", pa.string()), ("item_id", pa.string()), ("ts", pa.timestamp("ms", tz="UTC"))]))


# Two tastes: users 0-5 watch sport (s*), users 6-11 watch cooking (c*).
HISTORIES = {f"u{k}": (["s1", "s2", "s3", "s4"] if k < 6 else ["c1", "c2", "c3", "c4"])[k % 2:] + (["s1"] if k < 6 else ["c1"]) for k in range(12)}


def test_items_of_one_taste_are_closer_and_later_events_change_nothing() -> None:
    config = CooccurrenceConfig(dim=4, window=3)
    ids, x = cooccurrence_embeddings(_events(HISTORIES), CUTOFF, config)
    assert ids == ["c1", "c2", "c3", "c4", "s1", "s2", "s3", "s4"]
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    sim = x @ x.T
    sport, cooking = slice(4, 8), slice(0, 4)
    assert sim[sport, sport].mean() > sim[sport, cooking].mean() + 0.5
    later = pa.concat_tables([_events(HISTORIES), _events({"u0": ["s1", "c1", "s2", "c2"]}, day=30)])  # 2 March
    again_ids, again = cooccurrence_embeddings(later, CUTOFF, config)
    assert again_ids == ids and np.array_equal(again, x)  # the training window only, and deterministic


def test_every_logged_item_gets_a_vector_of_the_text_width_marked_by_source() -> None:
    """Only s1 and c1 have text; s2..s4 and c2..c4 come from co-occurrence; x9 is seen after the cut-off."""
    rng = np.random.default_rng(0)
    text_vectors = rng.standard_normal((2, 16)).astype(np.float32)
    text_vectors /= np.linalg.norm(text_vectors, axis=1, keepdims=True)
    text = ItemEmbeddings(pa.array(["c1", "s1"]), text_vectors, pa.array(["h1", "h2"]), "mini")
    events = pa.concat_tables([_events(HISTORIES), _events({"u0": ["x9"]}, day=30)])
    out = with_items_without_text(text, events, CUTOFF, CooccurrenceConfig(dim=4, window=3))
    sources = dict(zip(out.item_ids.to_pylist(), out.sources.to_pylist(), strict=True))  # type: ignore[union-attr]
    assert sorted(sources) == ["c1", "c2", "c3", "c4", "s1", "s2", "s3", "s4", "x9"]
    assert sources["c1"] == EmbeddingSource.TEXT and sources["s3"] == EmbeddingSource.COOCCURRENCE
    assert sources["x9"] == EmbeddingSource.ID_HASH
    assert out.vectors.shape == (9, 16) and out.model == "mini"
    assert abs(out.without_content_share - 7 / 9) < 1e-9
    at = {i: k for k, i in enumerate(out.item_ids.to_pylist())}
    # A sport item mapped into the text space lies nearer the sport text vector than the cooking one.
    assert out.vectors[at["s3"]] @ text_vectors[1] > out.vectors[at["s3"]] @ text_vectors[0]
