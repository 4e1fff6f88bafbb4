"""The enrichment assets over a real warehouse: what they read around the cut-off, what they report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pyarrow as pa

from assets import enrichment as assets
from assets.resources import CutoffsResource, EngineResource, WarehouseResource
from assets.resources_enrichment import ExtractiveGeneratorResource
from tests.transforms.enrichment.data import events, items, reviews
from transforms.enrichment.reports import partitions_to_read
from warehouse.contracts import (
    CORE_INTERACTIONS,
    ENRICHMENT_ITEM_DESCRIPTIONS,
    ENRICHMENT_USER_PROFILES,
    RAW_EVENTS,
    RAW_ITEMS,
    RAW_REVIEWS,
)
from warehouse.store import Warehouse

NOON = dt.datetime(2026, 1, 10, 12, tzinfo=dt.UTC)  # a cut-off that is not at midnight


def _materialize(home: Path, cutoff: dt.datetime) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [assets.user_profiles],
        resources={
            "warehouse": WarehouseResource(home=str(home)),
            "cutoffs": CutoffsResource(train_end=cutoff.isoformat(), valid_end=cutoff.isoformat()),
            "engine": EngineResource(memory_limit="1GB"), "enrichment_generator": ExtractiveGeneratorResource(),
        },
    )


def test_a_late_event_before_a_noon_cut_off_reaches_the_profile(tmp_path: Path) -> None:
    """Bob's click at 11:00 on the 10th arrived late and was logged in the 11th's partition (ingestion
    accepts a day of lateness); the cut-off is noon on the 10th, so his profile must count it."""
    store = Warehouse(tmp_path / "home")
    store.write(RAW_ITEMS, items())
    store.write(RAW_REVIEWS, reviews().slice(0, 0), dt.date(2026, 1, 1))
    base = events().filter(pa.array([t < NOON for t in events()["ts"].to_pylist()]))
    for day in sorted({t.date() for t in base["ts"].to_pylist()}):
        store.write(RAW_EVENTS, base.filter(pa.array([t.date() == day for t in base["ts"].to_pylist()])), day)
    late = events([{"event_id": "late", "user_id": "u2", "ts": NOON - dt.timedelta(hours=1), "event_type": "click",
                    "item_id": "i3", "request_id": None, "value": None, "session_id": None}]).slice(9, 1)
    store.write(RAW_EVENTS, late, dt.date(2026, 1, 11))
    assert _materialize(tmp_path / "home", NOON).success
    bob = next(r for r in store.read(ENRICHMENT_USER_PROFILES).to_pylist() if r["user_id"] == "u2")
    assert bob["profile"].startswith("(extractive) Before the cut-off: 3 interactions")  # click, purchase, late click


def test_partitions_are_read_to_the_cut_off_date_plus_the_late_tolerance() -> None:
    days = [dt.date(2026, 1, d) for d in range(8, 14)]
    assert partitions_to_read(days, NOON)[-1] == dt.date(2026, 1, 11)
    assert partitions_to_read(days, NOON, dt.timedelta(0))[-1] == dt.date(2026, 1, 10)


def _describe(home: Path, items: str) -> pa.Table:
    result = dg.materialize(
        [assets.item_descriptions],
        resources={
            "warehouse": WarehouseResource(home=str(home)),
            "cutoffs": CutoffsResource(train_end=NOON.isoformat(), valid_end=NOON.isoformat()),
            "engine": EngineResource(memory_limit="1GB"), "enrichment_generator": ExtractiveGeneratorResource(),
        },
        run_config={"ops": {"enrichment_item_descriptions": {"config": {"items": items}}}},  # Dagster: member names
    )
    assert result.success
    return Warehouse(home).read(ENRICHMENT_ITEM_DESCRIPTIONS)


def test_items_logged_describes_only_the_items_in_the_logs(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "home")
    catalog = items()
    store.write(RAW_ITEMS, catalog)
    store.write(RAW_REVIEWS, reviews().slice(0, 0), dt.date(2026, 1, 1))
    logged = events().slice(0, 1)
    store.write(RAW_EVENTS, logged, logged["ts"][0].as_py().date())
    assert catalog.num_rows > 1
    everything = _describe(tmp_path / "home", "CATALOG")
    assert sorted(everything["item_id"].to_pylist()) == sorted(catalog["item_id"].to_pylist())
    only_logged = _describe(tmp_path / "home", "LOGGED")
    assert only_logged["item_id"].to_pylist() == [logged["item_id"][0].as_py()]


def test_under_leave_one_out_the_descriptions_leave_out_the_held_out_reviews(tmp_path: Path) -> None:
    """``recforge build --split leave-one-out`` sets ``split_kind`` here too: each user's last two interactions
    are held out, so their reviews do not describe the items, though they precede the cut-off."""
    store = Warehouse(tmp_path / "home")
    store.write(RAW_ITEMS, items())
    extra = [{"review_id": "v5", "user_id": "u1", "item_id": "i2", "ts": dt.datetime(2026, 1, 8, 12, tzinfo=dt.UTC), "rating": 5.0,
              "title": "Held out", "text": "Blue flame, boils fast.", "helpful_votes": 3}]
    store.write(RAW_REVIEWS, reviews(extra), dt.date(2026, 1, 1))
    run = {"ops": {"enrichment_item_descriptions": {"config": {"split_kind": "LEAVE_ONE_OUT"}}}}
    resources = {"warehouse": WarehouseResource(home=str(tmp_path / "home")),
                 "cutoffs": CutoffsResource(train_end=NOON.isoformat(), valid_end=NOON.isoformat()),
                 "engine": EngineResource(memory_limit="1GB"), "enrichment_generator": ExtractiveGeneratorResource()}
    failed = dg.materialize([assets.item_descriptions], resources=resources, run_config=run, raise_on_error=False)
    assert not failed.success  # the held-out steps come from core/interactions: a clear failure without them
    assert "materialize core/interactions first" in str(failed.get_step_failure_events()[0].event_specific_data.error)
    # u1's interactions before the cut-off: i1 (day 2), i3 (day 5), i2 (day 8, valid), i1 again (day 9, test).
    rows = [("u1", "i1", 2), ("u1", "i3", 5), ("u1", "i2", 8), ("u1", "i1", 9), ("u2", "i1", 4)]
    columns = {f.name: pa.nulls(len(rows), f.type) for f in CORE_INTERACTIONS.schema}
    columns.update(event_id=pa.array([f"e{k}" for k in range(len(rows))]), user_idx=pa.array([int(u[1]) for u, _, _ in rows], pa.int64()),
                   item_idx=pa.array([int(i[1]) for _, i, _ in rows], pa.int64()), user_id=pa.array([u for u, _, _ in rows]),
                   item_id=pa.array([i for _, i, _ in rows]), ts=pa.array([dt.datetime(2026, 1, d, tzinfo=dt.UTC) for _, _, d in rows],
                                                                            pa.timestamp("us", tz="UTC")),
                   event_type=pa.array(["purchase"] * len(rows)), session_id=pa.array(["s"] * len(rows)),
                   session_index=pa.array([0] * len(rows), pa.int32()), session_length=pa.array([1] * len(rows), pa.int32()),
                   session_duration_ms=pa.array([0] * len(rows), pa.int64()))
    store.write(CORE_INTERACTIONS, pa.table(columns).cast(CORE_INTERACTIONS.schema))
    assert dg.materialize([assets.item_descriptions], resources=resources, run_config=run).success
    described = {r["item_id"]: r["description"] for r in store.read(ENRICHMENT_ITEM_DESCRIPTIONS).to_pylist()}
    assert "blue flame" not in described["i2"].lower()  # u1's review of the item u1 holds out
    # i1 is u1's test item: u1's own review of it (day 3) goes, u2's (day 4) stays.
    assert "easy setup" in described["i1"].lower() and "1 written review" in described["i1"]
