"""The connector runner: staging counts, day partitions, idempotency, chunking, merging, CLI and Dagster."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.connect import UNDATED, ConnectRules, ingest_dataset
from pipelines.ingestion import BadRowShareExceeded
from tests.connector_files import connector_root
from transforms.connectors import connector_for
from transforms.connectors.tabular import TabularConnector, mapping_from_dict
from transforms.engine import DuckDBEngine, EngineConfig
from warehouse import contracts
from warehouse.store import Warehouse

FIXTURES = connector_root()  # tests/connector_files.py, written into a temporary folder
# A fixed sanity bound (no wall clock in tests); the fixtures are mostly broken lines on purpose, so no
# bad-row limit unless a test sets one.
RULES = ConnectRules(ts_max=dt.datetime(2030, 1, 1), max_bad_share=None)

# (read, staged, quarantined, reasons) per table for every hand-written fixture (tests/connector_files.py
# holds them; a broken line is broken in plain sight).
EXPECTED = {
    ("movielens", "movielens/ml-100k"): {
        "events": (6, 3, 3, {"bad_value:ts": 1, "duplicate": 1, "invalid_json": 1}),
        "reviews": (5, 2, 3, {"bad_value:ts": 1, "duplicate": 1, "out_of_range:rating": 1}),
        "items": (3, 2, 1, {"invalid_json": 1}),
        "users": (3, 2, 1, {"invalid_json": 1}),
    },
    ("movielens", "movielens/ml-1m"): {
        "events": (4, 2, 2, {"bad_value:value": 1, "invalid_json": 1}),
        "reviews": (3, 2, 1, {"bad_value:rating": 1}),
        "items": (3, 3, 0, {}),
        "users": (2, 2, 0, {}),
    },
    ("movielens", "movielens/ml-latest"): {
        "events": (3, 2, 1, {"bad_value:value": 1}),
        "reviews": (6, 4, 2, {"bad_value:rating": 1, "invalid_json": 1}),
        "items": (3, 3, 0, {}),
    },
    ("amazon", "amazon/2014"): {
        "events": (2, 2, 0, {}),
        "reviews": (3, 2, 1, {"invalid_json": 1}),
        "items": (3, 2, 1, {"invalid_json": 1}),
    },
    ("amazon", "amazon/2018"): {
        "events": (5, 3, 2, {"duplicate": 1, "missing:event_id": 1}),
        "reviews": (5, 3, 2, {"duplicate": 1, "missing:review_id": 1}),
        "items": (3, 2, 1, {"duplicate": 1}),
    },
    ("amazon", "amazon/2023"): {
        "events": (3, 3, 0, {}),
        "reviews": (3, 2, 1, {"out_of_range:rating": 1}),
        "items": (2, 2, 0, {}),
    },
    ("obd", "obd"): {
        "slates": (4, 3, 1, {"out_of_range:propensities": 1}),
        "impressions": (6, 4, 2, {"invalid_json": 1, "out_of_range:propensity": 1}),
        "events": (2, 2, 0, {}),
        "items": (2, 2, 0, {}),
        "users": (3, 3, 0, {}),
    },
    ("mind", "mind"): {
        "slates": (5, 3, 2, {"bad_value:ts": 1, "invalid_json": 1}),
        "impressions": (7, 6, 1, {"bad_value:ts": 1}),
        "events": (5, 5, 0, {}),
        "items": (3, 2, 1, {"invalid_json": 1}),
    },
    ("coat", "coat"): {
        "events": (4, 3, 1, {"invalid_json": 1}),
        "impressions": (3, 3, 0, {}),
        "items": (4, 4, 0, {}),
        "users": (3, 3, 0, {}),
        "random_exposure_ratings": (3, 3, 0, {}),
    },
    ("yahoo-r3", "yahoo-r3"): {
        "events": (4, 3, 1, {"invalid_json": 1}),
        "random_exposure_ratings": (3, 3, 0, {}),
    },
    ("diginetica", "diginetica"): {
        "events": (6, 4, 2, {"bad_value:ts": 1, "invalid_json": 1}),
        "items": (3, 2, 1, {"invalid_json": 1}),
    },
    ("yoochoose", "yoochoose"): {"events": (7, 6, 1, {"invalid_json": 1}), "items": (3, 3, 0, {})},
    ("tabular", "tabular/events"): {
        "events": (6, 2, 4, {"bad_value:ts": 1, "invalid_json": 1, "missing:user_id": 1, "unknown_event_type": 1})
    },
    ("tabular", "tabular/items"): {"items": (4, 1, 3, {"invalid_json": 1, "missing:item_id": 1, "out_of_range:price": 1})},
}


@pytest.fixture()
def engine(duckdb_engine: DuckDBEngine) -> DuckDBEngine:
    return duckdb_engine


@pytest.mark.parametrize(("fmt", "folder"), list(EXPECTED), ids=[f"{f}:{p}" for f, p in EXPECTED])
def test_every_fixture_stages_exactly_as_expected(fmt: str, folder: str, warehouse: Warehouse, engine: DuckDBEngine) -> None:
    report = ingest_dataset(connector_for(fmt, FIXTURES / folder), warehouse, engine, RULES)
    got = {t: (c.read, c.staged, c.quarantined, c.reasons) for t, c in report.tables.items()}
    assert got == EXPECTED[(fmt, folder)]
    for table, counts in report.tables.items():
        spec_contract = contracts.contract_for("eval" if table == "random_exposure_ratings" else "raw", table)
        assert warehouse.read(spec_contract).num_rows == counts.staged
        assert warehouse.read(contracts.quarantine_contract(spec_contract)).num_rows == counts.quarantined


def test_rows_land_in_their_event_day_and_unreadable_days_in_undated(warehouse: Warehouse, engine: DuckDBEngine) -> None:
    report = ingest_dataset(connector_for("movielens", FIXTURES / "movielens/ml-100k"), warehouse, engine, RULES)
    # 881251234 -> 1997-12-04, 891718003 -> 1998-04-04, 880611111 -> 1997-11-27.
    assert report.tables["events"].partitions == (dt.date(1997, 11, 27), dt.date(1997, 12, 4), dt.date(1998, 4, 4))
    for day in report.tables["events"].partitions:
        days = {ts.date() for ts in warehouse.read(contracts.RAW_EVENTS, [day])["ts"].to_pylist()}
        assert days == {day}
    q = contracts.quarantine_contract(contracts.RAW_EVENTS)
    assert warehouse.partitions(q) == [UNDATED, dt.date(1997, 12, 4)]
    undated = warehouse.read(q, [UNDATED]).to_pylist()
    assert [(r["source_file"], r["line_no"], r["reason"]) for r in undated] == [
        ("ml-100k/u.data", 4, "invalid_json"),
        ("ml-100k/u.data", 6, "bad_value:ts"),
    ]
    dup = warehouse.read(q, [dt.date(1997, 12, 4)]).to_pylist()
    assert [(r["line_no"], r["reason"]) for r in dup] == [(3, "duplicate")]


def test_impossible_timestamps_are_quarantined(tmp_path: Path, warehouse: Warehouse, engine: DuckDBEngine) -> None:
    (tmp_path / "log.jsonl").write_text(
        '{"u": "a", "i": "x", "t": "1985-06-01T00:00:00Z", "k": "click"}\n'
        '{"u": "a", "i": "x", "t": "2031-06-01T00:00:00Z", "k": "click"}\n'
        '{"u": "a", "i": "x", "t": "2026-06-01T00:00:00Z", "k": "click"}\n'
    )
    mapping = mapping_from_dict({"table": "events", "columns": {"user_id": "u", "item_id": "i", "ts": "t", "event_type": "k"}})
    report = ingest_dataset(TabularConnector(tmp_path / "log.jsonl", "log", mapping), warehouse, engine, RULES)
    assert report.tables["events"].reasons == {"impossible_ts": 2}
    q = warehouse.read(contracts.quarantine_contract(contracts.RAW_EVENTS), [UNDATED])
    assert q["line_no"].to_pylist() == [1, 2]


def _snapshot(root: Path) -> dict[str, object]:
    """Every table's per-partition row count and content hash."""
    return {p.parent.relative_to(root).as_posix(): json.loads(p.read_text()) for p in sorted(root.rglob("_partitions.json"))}


def test_reingesting_is_idempotent(warehouse: Warehouse, engine: DuckDBEngine) -> None:
    ingest_dataset(connector_for("movielens", FIXTURES / "movielens/ml-100k"), warehouse, engine, RULES)
    first = _snapshot(warehouse.root)
    id_map = warehouse.read(contracts.CORE_ID_MAPS)
    again = ingest_dataset(connector_for("movielens", FIXTURES / "movielens/ml-100k"), warehouse, engine, RULES)
    assert _snapshot(warehouse.root) == first
    assert warehouse.read(contracts.CORE_ID_MAPS).equals(id_map)
    assert again.new_ids == 0


def test_small_chunks_give_the_same_tables_as_one_chunk(tmp_path: Path, engine: DuckDBEngine) -> None:
    # Cross-chunk duplicates (line 3 copies line 1) must be found exactly as within one chunk.
    one, many = Warehouse(tmp_path / "one"), Warehouse(tmp_path / "many")
    ingest_dataset(connector_for("movielens", FIXTURES / "movielens/ml-100k"), one, engine, RULES)
    report = ingest_dataset(
        connector_for("movielens", FIXTURES / "movielens/ml-100k"), many, engine, ConnectRules(chunk_lines=1, ts_max=RULES.ts_max, max_bad_share=None)
    )
    assert report.tables["events"].reasons == {"bad_value:ts": 1, "duplicate": 1, "invalid_json": 1}
    assert _snapshot(one.root) == _snapshot(many.root)


def test_chunks_staged_beside_the_reading_give_the_same_tables(tmp_path: Path) -> None:
    # Two engine threads: each chunk is staged by a second connection while the next is read; one: inline.
    small = ConnectRules(chunk_lines=2, ts_max=RULES.ts_max, max_bad_share=None)
    inline, beside = Warehouse(tmp_path / "inline"), Warehouse(tmp_path / "beside")
    with DuckDBEngine(EngineConfig(threads=1)) as one:
        assert one.parallel_workers == 1
        ingest_dataset(connector_for("movielens", FIXTURES / "movielens/ml-100k"), inline, one, small)
    with DuckDBEngine(EngineConfig(threads=2)) as two:
        ingest_dataset(connector_for("movielens", FIXTURES / "movielens/ml-100k"), beside, two, small)
    assert _snapshot(inline.root) == _snapshot(beside.root)


def test_a_chunk_that_fails_to_stage_stops_the_ingest_and_keeps_the_tables(
    tmp_path: Path, warehouse: Warehouse, engine: DuckDBEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines import connect_tables

    ingest_dataset(connector_for("movielens", FIXTURES / "movielens/ml-100k"), warehouse, engine, RULES)
    before = _snapshot(warehouse.root)
    staged = connect_tables._TableRun.stage_chunk
    calls = []

    def failing(self, *args):  # type: ignore[no-untyped-def]
        calls.append(self.table)
        if len(calls) == 3:
            raise RuntimeError("disk full while spilling")
        return staged(self, *args)

    monkeypatch.setattr(connect_tables._TableRun, "stage_chunk", failing)
    small = ConnectRules(chunk_lines=2, ts_max=RULES.ts_max, max_bad_share=None)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest_dataset(connector_for("movielens", FIXTURES / "movielens/ml-100k"), warehouse, engine, small)
    assert _snapshot(warehouse.root) == before


def test_other_sources_in_a_partition_are_kept(tmp_path: Path, warehouse: Warehouse, engine: DuckDBEngine) -> None:
    # Two datasets with events on the same day: the second ingest merges into the first's partition.
    mapping = mapping_from_dict({"table": "events", "columns": {"user_id": "u", "item_id": "i", "ts": "t", "event_type": "k"}})
    for name, user in (("a", "alice"), ("b", "bob")):
        (tmp_path / f"{name}.jsonl").write_text(f'{{"u": "{user}", "i": "x", "t": "2026-01-05T10:00:00Z", "k": "click"}}\n')
        ingest_dataset(TabularConnector(tmp_path / f"{name}.jsonl", name, mapping), warehouse, engine, RULES)
    day = warehouse.read(contracts.RAW_EVENTS, [dt.date(2026, 1, 5)])
    assert sorted(day["user_id"].to_pylist()) == ["alice", "bob"]
    ids = warehouse.read(contracts.CORE_ID_MAPS)
    assert sorted(zip(ids["external_id"].to_pylist(), ids["idx"].to_pylist(), strict=True)) == [("alice", 0), ("bob", 1), ("x", 0)]


def test_random_exposure_ratings_never_enter_the_training_tables(warehouse: Warehouse, engine: DuckDBEngine) -> None:
    ingest_dataset(connector_for("coat", FIXTURES / "coat"), warehouse, engine, RULES)
    held_out = warehouse.read(contracts.EVAL_RANDOM_RATINGS).to_pylist()
    assert [(r["dataset"], r["user_id"], r["item_id"], r["rating"]) for r in held_out] == [
        ("coat", "0", "0", 1.0), ("coat", "1", "2", 5.0), ("coat", "2", "1", 2.0)
    ]
    events = warehouse.read(contracts.RAW_EVENTS)
    assert set(zip(events["user_id"].to_pylist(), events["item_id"].to_pylist(), strict=True)) == {("0", "1"), ("0", "3"), ("1", "0")}
    impressions = warehouse.read(contracts.RAW_IMPRESSIONS)
    assert impressions["propensity"].to_pylist() == [0.2, 0.4, 0.5]


def test_bad_share_limit_fails_after_writing_the_quarantine(warehouse: Warehouse, engine: DuckDBEngine) -> None:
    rules = ConnectRules(ts_max=RULES.ts_max, max_bad_share=0.2)
    with pytest.raises(BadRowShareExceeded, match=r"3 of 4 items rows \(75.0%\)"):
        ingest_dataset(connector_for("tabular", FIXTURES / "tabular/items"), warehouse, engine, rules)
    assert warehouse.read(contracts.quarantine_contract(contracts.RAW_ITEMS)).num_rows == 3


# --- property: nothing is lost, whatever the corruption ---------------------------------------------

GOOD = st.fixed_dictionaries(
    {
        "user": st.sampled_from(["alice", "bob", "carol"]),
        "item": st.sampled_from(["i1", "i2", "i3", "i4"]),
        "when": st.datetimes(min_value=dt.datetime(2025, 12, 30), max_value=dt.datetime(2026, 1, 3)).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
        "action": st.sampled_from(["view", "click", "purchase"]),
    }
)
CORRUPTIONS = st.sampled_from(["none", "none", "truncate", "drop_user", "bad_time", "old_time", "bad_type", "duplicate", "extra_field", "garbage"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(GOOD, CORRUPTIONS), min_size=1, max_size=25), chunk=st.integers(1, 8))
def test_staged_plus_quarantined_equals_lines(tmp_path_factory: pytest.TempPathFactory, engine: DuckDBEngine, rows: list, chunk: int) -> None:
    folder = tmp_path_factory.mktemp("prop")
    lines = ["user,item,when,action"]
    previous = None
    for row, corruption in rows:
        values = [row["user"], row["item"], row["when"], row["action"]]
        if corruption == "truncate":
            values = values[:2]
        elif corruption == "drop_user":
            values[0] = ""
        elif corruption == "bad_time":
            values[2] = "13/45/2026"
        elif corruption == "old_time":
            values[2] = "1901-01-01T00:00:00Z"
        elif corruption == "bad_type":
            values[3] = "teleport"
        elif corruption == "extra_field":
            values.append("surplus")
        text = "\u00ff\x00{" if corruption == "garbage" else ",".join(values)
        if corruption == "duplicate" and previous is not None:
            text = previous
        lines.append(text)
        previous = text
    (folder / "log.csv").write_text("\n".join(lines) + "\n")
    mapping = mapping_from_dict({"table": "events", "columns": {"user_id": "user", "item_id": "item", "ts": "when", "event_type": "action"}})
    warehouse = Warehouse(folder / "home")
    report = ingest_dataset(
        TabularConnector(folder / "log.csv", "log", mapping), warehouse, engine, ConnectRules(chunk_lines=chunk, ts_max=RULES.ts_max, max_bad_share=None)
    )
    counts = report.tables["events"]
    data_lines = len(lines) - 1
    assert counts.read == data_lines
    staged = warehouse.read(contracts.RAW_EVENTS).num_rows
    quarantined = warehouse.read(contracts.quarantine_contract(contracts.RAW_EVENTS))
    assert staged + quarantined.num_rows == data_lines
    assert staged == counts.staged and quarantined.num_rows == counts.quarantined
    # Every line is accounted for exactly once, at its own line number.
    assert sorted(quarantined["line_no"].to_pylist()) == sorted(set(quarantined["line_no"].to_pylist()))
    assert pc.min(quarantined["line_no"]).as_py() is None or pc.min(quarantined["line_no"]).as_py() >= 2


# --- command line and Dagster ----------------------------------------------------------------------


def test_cli_prints_counts_and_explains_quarantined_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from recforge.cli import main

    monkeypatch.setenv("RECFORGE_HOME", str(tmp_path / "home"))
    clicks = str(FIXTURES / "tabular/events/clicks.csv")
    assert main(["ingest", "tabular", "--path", clicks, "--name", "shop", "--max-bad-share", "1"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.strip().startswith("events"))
    assert row.split()[1:4] == ["6", "2", "4"]
    # The first quarantined lines are the first in the file, in line order.
    listed = [line.split()[0] for line in out.splitlines() if line.strip().startswith("shop/clicks.csv:")]
    assert listed == sorted(listed, key=lambda s: int(s.rsplit(":", 1)[1])) and listed[0] == "shop/clicks.csv:4"
    assert "shop/clicks.csv:4 [events] bad_value:ts: column 'when' (mapped to ts)" in out
    assert (tmp_path / "home" / "catalog.duckdb").exists()


def test_cli_fails_over_five_percent_bad_rows_by_default_after_writing_the_quarantine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from recforge.cli import main

    monkeypatch.setenv("RECFORGE_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit, match=r"4 of 6 events rows \(66.7%\) were rejected, above the limit of 5.0%"):
        main(["ingest", "tabular", "--path", str(FIXTURES / "tabular/events/clicks.csv"), "--name", "shop"])
    assert "first quarantined lines" in capsys.readouterr().out  # the report is printed all the same
    home = Warehouse(tmp_path / "home")
    # The failed run keeps the tables' previous version (here: none) and writes what it rejected.
    assert home.read(contracts.RAW_EVENTS).num_rows == 0
    assert home.read(contracts.quarantine_contract(contracts.RAW_EVENTS)).num_rows == 4


def test_cli_exits_non_zero_when_every_row_is_quarantined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from recforge.cli import main

    monkeypatch.setenv("RECFORGE_HOME", str(tmp_path / "home"))
    (tmp_path / "log.csv").write_text("uid,sku,when,action\nalice,i1,yesterday,click\nbob,i2,never,view\n")
    (tmp_path / "mapping.yaml").write_text("table: events\ncolumns: {user_id: uid, item_id: sku, ts: when, event_type: action}\ngenerate_ids: true\n")
    with pytest.raises(SystemExit, match="nothing staged: every one of 2 rows was quarantined"):
        main(["ingest", "tabular", "--path", str(tmp_path / "log.csv"), "--max-bad-share", "1"])


def test_quarantine_tables_exist_even_when_nothing_was_quarantined(warehouse: Warehouse, engine: DuckDBEngine) -> None:
    from warehouse.catalog import connect_catalog, refresh_catalog

    report = ingest_dataset(connector_for("movielens", FIXTURES / "movielens/ml-1m"), warehouse, engine, RULES)
    assert report.tables["items"].quarantined == 0
    refresh_catalog(warehouse.root)
    with connect_catalog(warehouse.root) as con:
        assert con.execute("SELECT count(*) FROM quarantine_items").fetchone() == (0,)


def test_cli_reports_a_bad_mapping_without_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from recforge.cli import main

    monkeypatch.setenv("RECFORGE_HOME", str(tmp_path / "home"))
    (tmp_path / "log.csv").write_text("a\n1\n")
    (tmp_path / "m.yaml").write_text("table: events\ncolumns: {user_id: a}\n")
    with pytest.raises(SystemExit, match="events requires 'ts'"):
        main(["ingest", "tabular", "--path", str(tmp_path / "log.csv"), "--mapping", str(tmp_path / "m.yaml")])


def test_dagster_job_stages_a_dataset_and_reports_materializations(tmp_path: Path) -> None:
    from assets.connectors import dataset_ingest_job
    from assets.resources import EngineResource, WarehouseResource

    result = dataset_ingest_job.execute_in_process(
        run_config={"ops": {"dataset_ingest": {"config": {"format": "coat", "path": str(FIXTURES / "coat"), "max_bad_share": None}}}},
        resources={"warehouse": WarehouseResource(home=str(tmp_path / "home")), "engine": EngineResource(memory_limit="1GB")},
    )
    assert result.success
    materializations = result.asset_materializations_for_node("dataset_ingest")
    keys = [m.asset_key.to_user_string() for m in materializations]
    # One event per table (its days as metadata), never one per day partition.
    assert sorted(keys) == sorted({"raw/events", "raw/impressions", "raw/items", "raw/users", "eval/random_exposure_ratings"})
    events = next(m for m in materializations if m.asset_key.to_user_string() == "raw/events")
    assert events.metadata["first_day"].value == events.metadata["last_day"].value == "2016-01-01"
    assert Warehouse(tmp_path / "home").read(contracts.EVAL_RANDOM_RATINGS).num_rows == 3




# --- real datasets in ../shared/datasets (skipped when absent) ---------------------------------------


def _ingest(fmt: str, path: Path, home: Path, engine: DuckDBEngine):  # type: ignore[no-untyped-def]
    warehouse = Warehouse(home)
    return warehouse, ingest_dataset(connector_for(fmt, path), warehouse, engine, RULES)


@pytest.mark.datasets
def test_coat(shared_datasets: Path, tmp_path: Path, engine: DuckDBEngine) -> None:
    warehouse, report = _ingest("coat", shared_datasets / "coat", tmp_path / "home", engine)
    assert report.tables["events"].staged == 6960
    assert report.tables["impressions"].staged == 6960
    assert report.tables["random_exposure_ratings"].staged == 4640
    assert (report.users, report.items) == (290, 300)
    assert sum(t.quarantined for t in report.tables.values()) == 0
    held_out = warehouse.read(contracts.EVAL_RANDOM_RATINGS)
    assert pc.count_distinct(held_out["user_id"]).as_py() == 290


@pytest.mark.datasets
@pytest.mark.slow
def test_movielens_100k(shared_datasets: Path, tmp_path: Path, engine: DuckDBEngine) -> None:
    warehouse, report = _ingest("movielens", shared_datasets / "movielens-100k/ml-100k", tmp_path / "home", engine)
    assert {t: (c.read, c.staged) for t, c in report.tables.items()} == {
        "events": (100_000, 100_000), "reviews": (100_000, 100_000), "items": (1682, 1682), "users": (943, 943)
    }
    assert (report.users, report.items) == (943, 1682)
    assert warehouse.read(contracts.RAW_EVENTS).num_rows == 100_000


@pytest.mark.datasets
@pytest.mark.slow
def test_movielens_1m_dat_format(shared_datasets: Path, tmp_path: Path, engine: DuckDBEngine) -> None:
    _, report = _ingest("movielens", shared_datasets / "movielens-1m-partial/ml-1m", tmp_path / "home", engine)
    # Ratings of users 1-2999 only (the first 487,650 lines of ratings.dat); movies and users complete.
    assert report.tables["events"].staged == 487_650
    assert (report.tables["items"].staged, report.tables["users"].staged) == (3883, 6040)
    assert sum(t.quarantined for t in report.tables.values()) == 0


@pytest.mark.datasets
@pytest.mark.slow
def test_open_bandit_small(shared_datasets: Path, tmp_path: Path, engine: DuckDBEngine) -> None:
    warehouse, report = _ingest("obd", shared_datasets / "open-bandit-dataset-small", tmp_path / "home", engine)
    assert report.tables["impressions"].staged == 40_000
    slates = warehouse.read(contracts.RAW_SLATES)
    policy_of = dict(zip(slates["request_id"].to_pylist(), zip(slates["policy"].to_pylist(), slates["surface"].to_pylist(), strict=True), strict=True))
    per_policy: dict[tuple[str, str], int] = {}
    for request in warehouse.read(contracts.RAW_IMPRESSIONS)["request_id"].to_pylist():
        per_policy[policy_of[request]] = per_policy.get(policy_of[request], 0) + 1
    assert per_policy == {("bts", "men"): 10_000, ("bts", "women"): 10_000, ("random", "men"): 10_000, ("random", "women"): 10_000}
    assert report.tables["items"].staged == 34 + 46


@pytest.mark.datasets
@pytest.mark.slow
def test_amazon_2018_gift_cards(shared_datasets: Path, tmp_path: Path, engine: DuckDBEngine) -> None:
    warehouse, report = _ingest("amazon", shared_datasets / "amazon2018-gift-cards", tmp_path / "home", engine)
    assert report.tables["reviews"].staged == 2972
    reviewed = set(warehouse.read(contracts.RAW_REVIEWS)["item_id"].to_pylist())
    catalog = warehouse.read(contracts.RAW_ITEMS)
    assert reviewed <= set(catalog["item_id"].to_pylist())  # metadata joined for every reviewed item
    assert all("<" not in (t or "") for t in catalog["title"].to_pylist())


@pytest.mark.datasets
def test_diginetica_item_views_sample(shared_datasets: Path, tmp_path: Path, engine: DuckDBEngine) -> None:
    _, report = _ingest("diginetica", shared_datasets / "diginetica/sample_train-item-views.csv", tmp_path / "home", engine)
    assert (report.tables["events"].read, report.tables["events"].staged) == (12_391, 12_391)


@pytest.mark.spark
@pytest.mark.slow  # a Spark query costs seconds on 2 shared cores; a connector run is a few dozen of them
@pytest.mark.parametrize("folder", ["obd", "movielens/ml-100k"])
def test_spark_stages_the_same_tables_as_duckdb(folder: str, tmp_path: Path, engine: DuckDBEngine, spark_engine) -> None:  # type: ignore[no-untyped-def]
    fmt = folder.split("/")[0]
    on_duckdb, on_spark = Warehouse(tmp_path / "duckdb"), Warehouse(tmp_path / "spark")
    expected = ingest_dataset(connector_for(fmt, FIXTURES / folder), on_duckdb, engine, RULES)
    got = ingest_dataset(connector_for(fmt, FIXTURES / folder), on_spark, spark_engine, RULES)
    assert got.summary() == expected.summary()
    for table in expected.tables:
        contract = contracts.contract_for("raw", table)
        assert on_spark.read(contract).to_pylist() == on_duckdb.read(contract).to_pylist()
        q = contracts.quarantine_contract(contract)
        assert on_spark.read(q).to_pylist() == on_duckdb.read(q).to_pylist()
