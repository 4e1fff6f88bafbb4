"""Label defects of issues 12, 13 and 14, each on a tiny literal log built here (or a small sample world)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipelines.ingestion import LOG_TABLES, ingest_table
from sample_world import WorldConfig, generate_world
from tests.transforms.labels.helpers import position_bias
from transforms import labels as L
from transforms.engine import DuckDBEngine, Engine, EngineConfig
from transforms.labels.click_model import ClickModelConfig
from warehouse import contracts as C
from warehouse.store import Warehouse

UTC = dt.UTC
DAY0 = dt.datetime(2026, 1, 1, tzinfo=UTC)
CUTOFFS = L.Cutoffs(train_end=DAY0 + dt.timedelta(days=2), valid_end=DAY0 + dt.timedelta(days=3))


def _ts(day: int, seconds: float = 0.0) -> dt.datetime:
    return DAY0 + dt.timedelta(days=day, seconds=seconds)


def _table(contract: C.TableContract, rows: list[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in contract.schema} for r in rows], schema=contract.schema)


def _register(engine: Engine, **tables: pa.Table) -> None:
    for name, contract in L.SOURCE_RELATIONS.items():
        engine.register_arrow(name, tables.get(name, contract.schema.empty_table()))


def _config(**overrides: object) -> L.LabelConfig:
    return L.LabelConfig(cutoffs=CUTOFFS, click_model=ClickModelConfig(min_position_clicks=1), **overrides)  # type: ignore[arg-type]


def _build(engine: Engine, config: L.LabelConfig) -> tuple[pa.Table, pa.Table, pa.Table]:
    bias, _ = L.fit_position_bias(engine, config)
    popularity = L.exposure_propensities(engine, config)
    parts = [t for _, t in L.iter_debiased_labels(engine, config, bias, popularity)]
    labels = pa.concat_tables(parts) if parts else C.LABELS_DEBIASED_LABELS.schema.empty_table()
    return bias, popularity, labels


def _slate_log(slates: Sequence[tuple[str, int, list[str], list[float] | None]],
               impressions: Sequence[tuple[str, str, int]], clicks: Sequence[tuple[str, str]] = ()) -> dict[str, pa.Table]:
    """Slates ``(request, day, items, propensities)``, impressions ``(request, item, position)`` and clicks
    ``(request, item)``, all by user ``u`` on surface ``home``, impressions at their slate's time."""
    when = {r: _ts(day, 10) for r, day, _, _ in slates}
    return {
        "slates": _table(C.RAW_SLATES, [
            {"request_id": r, "user_id": "u", "ts": when[r], "surface": "home", "item_ids": items, "policy": "p",
             "propensities": props} for r, _, items, props in slates]),
        "impressions": _table(C.RAW_IMPRESSIONS, [
            {"request_id": r, "user_id": "u", "item_id": i, "position": k, "ts": when.get(r, _ts(0, 10))}
            for r, i, k in impressions]),
        "events": _table(C.RAW_EVENTS, [
            {"event_id": f"c{n}", "user_id": "u", "ts": when.get(r, _ts(0, 10)) + dt.timedelta(seconds=2),
             "event_type": "click", "item_id": i, "request_id": r} for n, (r, i) in enumerate(clicks)]),
    }


# --- 13.1 SNIPS leaves the estimand alone ----------------------------------------------------------


def _small_world(root: Path, snips: bool) -> tuple[Path, pa.Table]:
    config = WorldConfig(users=800, items=150, days=3, seed=4, bad_share=0.0, dup_share=0.0, surfaces=("home",))
    cutoffs = L.Cutoffs(dt.datetime(2026, 1, 3, tzinfo=UTC), dt.datetime(2026, 1, 3, tzinfo=UTC))
    generate_world(config, root / "landing")
    store = Warehouse(root / "home")
    with DuckDBEngine(EngineConfig(memory_limit="1GB", spill_dir=str(root / "spill"))) as engine:
        for day in (config.start_date + dt.timedelta(days=d) for d in range(config.days)):
            for table in LOG_TABLES:
                ingest_table(store, engine, table, root / "landing", day)
        ingest_table(store, engine, "items", root / "landing")
        L.register_sources(engine, {n: store.files(c) for n, c in L.SOURCE_RELATIONS.items()})
        _, _, labels = _build(engine, L.LabelConfig(cutoffs=cutoffs, snips=snips))
    return root / "landing", labels


def test_snips_keeps_the_ips_estimate_of_mean_relevance_on_the_truth(tmp_path: Path) -> None:
    landing, labels = _small_world(tmp_path, snips=True)
    served = pq.read_table(landing / "truth" / "served", columns=["request_id", "item_id", "position", "impressed", "relevance_prob"])
    served = served.filter(served["impressed"]).drop(["impressed"])
    joined = labels.select(["request_id", "item_id", "position", "weight_positive"]).join(
        served, ["request_id", "item_id", "position"], join_type="inner")
    assert joined.num_rows == labels.num_rows
    truth = pc.mean(joined["relevance_prob"]).as_py()
    assert abs(pc.mean(joined["weight_positive"]).as_py() - truth) <= 0.02


def test_snips_rescales_only_popularity_rows_to_the_number_of_pairs(duckdb_engine: Engine) -> None:
    # Ratings only: x rated by u0..u3 (all positive), y by u9 (positive) and u8 (2 stars). 6 users x 2 items
    # = 12 pairs; theta_x = 1, theta_y = (2/4) ** 0.5; the 6 rated pairs sum 1/theta to 4 + 2 / sqrt(1/2).
    reviews = _table(C.RAW_REVIEWS, [
        {"review_id": f"v{i}", "user_id": f"u{i}", "item_id": "x", "ts": _ts(0, i), "rating": 5.0} for i in range(4)
    ] + [{"review_id": "v9", "user_id": "u9", "item_id": "y", "ts": _ts(0, 9), "rating": 4.0},
         {"review_id": "v8", "user_id": "u8", "item_id": "y", "ts": _ts(0, 8), "rating": 2.0}])
    _register(duckdb_engine, reviews=reviews)
    _, _, labels = _build(duckdb_engine, _config(snips=True))
    theta_y = 0.5 ** 0.5
    scale = 12 / (4 + 2 / theta_y)  # 6 users (u0-u3, u8, u9) x 2 items
    weights = {r["user_id"]: r["ips_weight"] for r in labels.to_pylist()}
    assert weights["u0"] == pytest.approx(scale)
    assert weights["u9"] == pytest.approx(scale / theta_y)
    # Click-model rows carry their absolute probability: SNIPS leaves them alone.
    _register(duckdb_engine, **_slate_log([("r1", 0, ["a", "b"], None)], [("r1", "a", 0), ("r1", "b", 1)], [("r1", "a")]))
    _, _, plain = _build(duckdb_engine, _config())
    _, _, snipped = _build(duckdb_engine, _config(snips=True))
    assert plain.column("ips_weight").to_pylist() == snipped.column("ips_weight").to_pylist()


# --- 13.2 one estimand per table ------------------------------------------------------------------


def _mixed_log() -> dict[str, pa.Table]:
    # r1 logs its propensities, r2 does not.
    return _slate_log(
        [("r1", 0, ["a", "b"], [0.5, 0.25]), ("r2", 0, ["b", "a"], None)],
        [("r1", "a", 0), ("r1", "b", 1), ("r2", "b", 0), ("r2", "a", 1)],
        [("r1", "a"), ("r2", "a")],
    )


def test_the_position_estimand_weights_every_exposure_row_by_examination_only(duckdb_engine: Engine) -> None:
    _register(duckdb_engine, **_mixed_log())
    _, _, labels = _build(duckdb_engine, _config(estimand=L.Estimand.POSITION))
    rows = {(r["request_id"], r["item_id"]): r for r in labels.to_pylist()}
    assert {r["propensity_source"] for r in rows.values()} == {"click_model"}
    assert all(r["propensity"] == r["examination"] for r in rows.values())
    assert rows[("r1", "b")]["policy_propensity"] == 0.25  # still recorded, not used


def test_the_logged_estimand_needs_every_exposure_row_logged(duckdb_engine: Engine) -> None:
    _register(duckdb_engine, **_mixed_log())
    with pytest.raises(ValueError, match="logged"):
        _build(duckdb_engine, _config(estimand=L.Estimand.LOGGED))
    log = _mixed_log()
    log["slates"] = log["slates"].filter(pc.equal(log["slates"]["request_id"], "r1"))
    log["impressions"] = log["impressions"].filter(pc.equal(log["impressions"]["request_id"], "r1"))
    _register(duckdb_engine, **log)
    _, _, labels = _build(duckdb_engine, _config(estimand=L.Estimand.LOGGED))
    rows = {r["item_id"]: r for r in labels.to_pylist()}
    assert {r["propensity_source"] for r in rows.values()} == {"logged"}
    assert rows["b"]["propensity"] == pytest.approx(0.25 * rows["b"]["examination"])


# --- 13.4 the logged propensity of the item, not of the slot --------------------------------------


def test_the_logged_propensity_is_the_items_own_and_a_slot_mismatch_is_marked(duckdb_engine: Engine) -> None:
    # The slate lists a, b, c; only a and c were rendered, at positions 0 and 1: c's position (1) is not
    # its slot in the slate (2), so slot 1's propensity (b's, 0.3) is not c's.
    _register(duckdb_engine, **_slate_log([("r1", 0, ["a", "b", "c"], [0.6, 0.3, 0.1])], [("r1", "a", 0), ("r1", "c", 1)],
                                          [("r1", "a")]))
    bias, _, labels = _build(duckdb_engine, _config())
    rows = {r["item_id"]: r for r in labels.to_pylist()}
    assert rows["a"]["policy_propensity"] == 0.6
    assert rows["c"]["policy_propensity"] is None
    assert L.exposure_diagnostics(duckdb_engine, _config(), bias).slot_mismatches == 1
    # Under the logged estimand the mismatched row is left out (and counted), not given b's propensity.
    _, _, logged = _build(duckdb_engine, _config(estimand=L.Estimand.LOGGED))
    assert logged.column("item_id").to_pylist() == ["a"]


# --- 13.6 the estimator mode is decided per split -------------------------------------------------


def test_one_late_impression_does_not_empty_a_ratings_only_training_set(duckdb_engine: Engine) -> None:
    reviews = _table(C.RAW_REVIEWS, [
        {"review_id": f"v{n}", "user_id": f"u{n % 4}", "item_id": f"i{n % 5}", "ts": _ts(0, n), "rating": 5.0}
        for n in range(12)])
    late = _slate_log([("late", 4, ["i0"], None)], [("late", "i0", 0)])
    _register(duckdb_engine, reviews=reviews, slates=late["slates"], impressions=late["impressions"])
    _, popularity, labels = _build(duckdb_engine, _config())
    train = labels.filter(pc.equal(labels["split"], "train"))
    assert train.num_rows == 12
    assert set(train.column("propensity_source").to_pylist()) == {"popularity"}
    basis = {r["split"]: r["basis"] for r in popularity.to_pylist()}
    assert basis["train"] == "ratings" and basis["test"] == "impressions"


# --- 13.12 and 14.4 positions without a position 0, orphan impressions ----------------------------


def test_a_surface_without_position_zero_fails_at_once_naming_the_surface(duckdb_engine: Engine) -> None:
    log = _slate_log([("r1", 0, ["a", "b"], None)], [("r1", "a", 1), ("r1", "b", 2)], [("r1", "a")])
    _register(duckdb_engine, **log)
    config = L.LabelConfig(cutoffs=CUTOFFS, click_model=ClickModelConfig(min_position_clicks=1))
    with pytest.raises(ValueError, match=r"'home'.*position 0"):
        L.fit_position_bias(duckdb_engine, config)


def test_an_orphan_impression_writes_no_nan_and_is_counted(duckdb_engine: Engine) -> None:
    # r1 and r2 have slates; "lost" has none and was rendered at position 3.
    log = _slate_log([("r1", 0, ["a", "b"], None), ("r2", 0, ["b", "a"], None)],
                     [("r1", "a", 0), ("r1", "b", 1), ("r2", "b", 0), ("r2", "a", 1), ("lost", "c", 3)],
                     [("r1", "a"), ("r2", "a")])
    _register(duckdb_engine, **log)
    bias, _, labels = _build(duckdb_engine, _config())
    assert not any(np.isnan(v) for v in bias.column("examination").to_pylist())
    assert "c" not in labels.column("item_id").to_pylist()
    assert labels.num_rows == 4
    assert L.exposure_diagnostics(duckdb_engine, _config(), bias).orphans_excluded == 1


def test_check_reports_serialize_whatever_the_table_holds() -> None:
    # A NaN examination next to a datetime: the failing rows go to JSON metadata as they are.
    table = position_bias([("test", "home", 0, 1.0), ("test", "home", 1, float("nan"))])
    table = table.set_column(table.schema.get_field_index("fitted_until"), "fitted_until",
                             pa.array([DAY0, DAY0], C.TS))
    report = L.position_bias_report(table, [], {})
    assert len(report.out_of_range) == 1
    json.dumps(dataclasses.asdict(report), allow_nan=False)


# --- 12.3 one label row per rating, whatever tables hold it ---------------------------------------


def test_a_rating_stored_as_event_and_review_gives_one_row(duckdb_engine: Engine) -> None:
    ratings = [("u1", "x", 0, 5.0), ("u2", "x", 1, 4.0), ("u3", "y", 2, 5.0), ("u4", "y", 3, 2.0)]
    reviews = _table(C.RAW_REVIEWS, [
        {"review_id": f"v{n}", "user_id": u, "item_id": i, "ts": _ts(0, s), "rating": v} for n, (u, i, s, v) in enumerate(ratings)])
    events = _table(C.RAW_EVENTS, [
        {"event_id": f"e{n}", "user_id": u, "item_id": i, "ts": _ts(0, s), "event_type": "rating", "value": v}
        for n, (u, i, s, v) in enumerate(ratings)])
    _register(duckdb_engine, reviews=reviews, events=events)
    _, popularity, labels = _build(duckdb_engine, _config())
    assert labels.num_rows == 3
    exposures = {(r["split"], r["item_id"]): r["exposures"] for r in popularity.to_pylist()}
    assert exposures[("train", "x")] == 2 and exposures[("train", "y")] == 2


# --- 12.2 one set-based pass, whatever the number of days -----------------------------------------


class _CountingEngine(Engine):
    """Delegates to a DuckDB engine and counts the queries."""

    def __init__(self, inner: Engine) -> None:
        self.inner, self.dialect, self.queries = inner, inner.dialect, 0

    def register_arrow(self, name: str, table: pa.Table) -> None:
        self.inner.register_arrow(name, table)

    def register_parquet(self, name: str, paths: Sequence[Path], null_columns: Sequence[pa.Field] = ()) -> None:
        self.inner.register_parquet(name, paths, null_columns)

    def register_text_lines(self, name: str, path: Path, source_name: str) -> None:
        self.inner.register_text_lines(name, path, source_name)

    def register_parquet_rows(self, name: str, path: Path, source_name: str) -> None:
        self.inner.register_parquet_rows(name, path, source_name)

    def query(self, sql: str) -> pa.Table:
        self.queries += 1
        return self.inner.query(sql)

    def close(self) -> None:
        pass


def _daily_log(days: int) -> dict[str, pa.Table]:
    slates = [(f"r{d}_{n}", d, ["a", "b", "c"], None) for d in range(days) for n in range(3)]
    impressions = [(r, i, k) for r, _, items, _ in slates for k, i in enumerate(items)]
    clicks = [(r, items[n % 3]) for n, (r, _, items, _) in enumerate(slates)]
    return _slate_log(slates, impressions, clicks)


def test_labels_are_one_pass_whose_queries_do_not_grow_with_days(duckdb_engine: Engine) -> None:
    counts, tables = [], []
    for days in (2, 9):
        engine = _CountingEngine(duckdb_engine)
        _register(engine, **_daily_log(days))
        config = _config()
        bias, _ = L.fit_position_bias(engine, config)
        popularity = L.exposure_propensities(engine, config)
        engine.queries = 0
        parts = list(L.iter_debiased_labels(engine, config, bias, popularity))
        counts.append(engine.queries)
        tables.append(parts)
    assert counts[0] == counts[1]
    # Still one partition per day, each holding that day's rows.
    days = [day for day, _ in tables[1]]
    assert days == [DAY0.date() + dt.timedelta(days=d) for d in range(9)]
    for day, part in tables[1]:
        assert part.num_rows == 9 and {t.date() for t in part.column("ts").to_pylist()} == {day}


@pytest.mark.spark
def test_spark_builds_the_same_labels_on_the_new_paths(duckdb_engine: Engine, spark_engine: Engine) -> None:
    # The slot lookup by item (a mismatch included), an orphan, and a late impression after ratings.
    log = _slate_log([("r1", 0, ["a", "b", "c"], [0.6, 0.3, 0.1]), ("r2", 1, ["b", "a"], [0.5, 0.5])],
                     [("r1", "a", 0), ("r1", "c", 1), ("r2", "b", 0), ("r2", "a", 1), ("lost", "c", 3)],
                     [("r1", "a"), ("r2", "a")])
    outputs = []
    for engine in (duckdb_engine, spark_engine):
        _register(engine, **log)
        outputs.append(_build(engine, _config()))
    assert outputs[0][0].equals(outputs[1][0])
    assert outputs[0][2].equals(outputs[1][2])
