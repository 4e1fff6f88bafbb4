"""The documented route on every dataset in ../shared/datasets: ``recforge ingest`` then ``recforge build``.

Counts are checked against DuckDB reading the source files here, independently of the connectors: for
every table ``staged + quarantined = read`` and ``read`` is the number of source records, and the raw
table holds exactly the staged rows (nothing lost, nothing doubled). The build runs the layers below
raw from those tables with the split each dataset is evaluated with. Skipped when the folder is absent
(its licences forbid copying it into the project).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from recforge.cli import main
from warehouse import contracts
from warehouse.catalog import connect_catalog
from warehouse.store import Warehouse

pytestmark = pytest.mark.datasets


@dataclass(frozen=True)
class Case:
    """One shared dataset: how to ingest it, and its record counts computed by DuckDB from the files."""

    name: str
    fmt: str
    folder: str
    counts: dict[str, str]  # raw table -> SQL giving the number of source records ({p} is the folder)
    splits: tuple[str, ...] = ("temporal", "leave-one-out")


def _lines(glob: str) -> str:
    # Every non-blank line of (gzipped) text files, as one VARCHAR column: no parsing at all.
    return (
        f"SELECT count(*) FROM read_csv('{glob}', columns={{'line': 'VARCHAR'}}, delim=chr(1), quote='', escape='',"
        " header=false, auto_detect=false) WHERE trim(line) <> ''"
    )


CASES = [
    Case("movielens-100k", "movielens", "movielens-100k/ml-100k", {
        "events": "SELECT count(*) FROM read_csv('{p}/u.data', delim='\t', header=false, columns={'u': 'INT', 'i': 'INT', 'r': 'INT', 't': 'BIGINT'})",
        "items": "SELECT count(*) FROM read_csv('{p}/u.item', delim='|', header=false, quote='', encoding='latin-1', all_varchar=true, null_padding=true)",
        "users": "SELECT count(*) FROM read_csv('{p}/u.user', delim='|', header=false, all_varchar=true)",
    }),
    Case("movielens-1m-partial", "movielens", "movielens-1m-partial/ml-1m", {
        "events": "SELECT count(*) FROM read_csv('{p}/ratings.users_1-2999.dat', delim='::', header=false, all_varchar=true)",
        "users": "SELECT count(*) FROM read_csv('{p}/users.dat', delim='::', header=false, all_varchar=true)",
    }),
    Case("coat", "coat", "coat", {
        "events": "SELECT count(*) FROM (UNPIVOT (SELECT * FROM read_csv('{p}/train.ascii', delim=' ', header=false, all_varchar=true))"
                  " ON COLUMNS(*) INTO NAME c VALUE v) WHERE trim(v) NOT IN ('', '0')",
    }, splits=("leave-one-out",)),  # Coat has no timestamps (one synthetic time): no temporal split to test
    Case("open-bandit-dataset-small", "obd", "open-bandit-dataset-small", {
        "impressions": "SELECT count(*) FROM read_csv('{p}/*/*/*men.csv', header=true, all_varchar=true)",
        "events": "SELECT count(*) FROM read_csv('{p}/*/*/*men.csv', header=true, all_varchar=true) WHERE click = '1'",
    }),
    Case("amazon2014-musical-instruments-5core", "amazon", "amazon2014-musical-instruments-5core", {
        "reviews": _lines("{p}/reviews_*.json.gz"),
    }),
    Case("amazon2018-gift-cards", "amazon", "amazon2018-gift-cards", {
        "reviews": _lines("{p}/Gift_Cards_5.json.gz"), "items": _lines("{p}/meta_*.json.gz"),
    }),
    Case("amazon2018-magazine-subscriptions", "amazon", "amazon2018-magazine-subscriptions", {
        "reviews": _lines("{p}/Magazine_Subscriptions_5.json.gz"), "items": _lines("{p}/meta_*.json.gz"),
    }),
    Case("amazon2018-small-5core-reviews", "amazon", "amazon2018-small-5core-reviews", {
        "reviews": _lines("{p}/*_5.json.gz"),
    }),
    Case("diginetica", "diginetica", "diginetica", {
        "events": "SELECT (SELECT count(*) FROM read_csv('{p}/sample_train-item-views.csv', delim=';', header=true, all_varchar=true))"
                  " + (SELECT count(*) FROM read_csv('{p}/train-purchases.csv', delim=';', header=true, all_varchar=true))",
        "items": "SELECT count(*) FROM read_csv('{p}/product-categories.csv', delim=';', header=true, all_varchar=true)",
    }, splits=("temporal", "leave-one-out", "session")),
    Case("amazon2014-beauty-sequences", "sequences", "amazon2014-beauty-sequences", {
        "events": "SELECT sum(json_array_length(v)) FROM (SELECT unnest(json_extract(json, '$.*')) AS v"
                  " FROM read_json_objects('{p}/Beauty.inter.json', format='unstructured'))",
        "items": "SELECT count(*) FROM (SELECT unnest(json_keys(json)) FROM read_json_objects('{p}/Beauty.index.json', format='unstructured'))",
    }, splits=("leave-one-out",)),
]
HEAVY = {"movielens-1m-partial"}  # over a minute to stage on 2 cores
BUILD_LAYERS = "core,labels,training_data"  # enrichment and semantic IDs on real data: test_review_text.py
TABLES = {"events": contracts.RAW_EVENTS, "impressions": contracts.RAW_IMPRESSIONS, "reviews": contracts.RAW_REVIEWS,
          "items": contracts.RAW_ITEMS, "users": contracts.RAW_USERS}


def _param(case: Case, *extra: str) -> object:
    marks = [pytest.mark.slow] if case.name in HEAVY or extra else []
    return pytest.param(case, *extra, id="-".join((case.name, *extra)), marks=marks)


def _ingest(case: Case, shared: Path, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> dict:
    monkeypatch.setenv("RECFORGE_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / ".dagster"))
    assert main(["ingest", case.fmt, "--path", str(shared / case.folder), "--json", "--verbose"]) == 0
    import json

    return json.loads(capsys.readouterr().out)["tables"]


def _source_count(sql: str, folder: Path) -> int:
    with duckdb.connect() as con:
        return int(con.execute(sql.replace("{p}", str(folder))).fetchone()[0])


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_ingest_keeps_every_source_record(
    case: Case, shared_datasets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = _ingest(case, shared_datasets, tmp_path / "home", monkeypatch, capsys)
    store = Warehouse(tmp_path / "home")
    for table, sql in case.counts.items():
        expected = _source_count(sql, shared_datasets / case.folder)
        got = tables[table]
        assert got["read"] == expected, f"{table}: DuckDB counts {expected} source records, the connector read {got['read']}"
        assert got["staged"] + got["quarantined"] == got["read"]
        assert store.read(TABLES[table]).num_rows == got["staged"]  # nothing lost, nothing doubled
    for table, got in tables.items():
        assert got["staged"] + got["quarantined"] == got["read"], table


@pytest.mark.slow
@pytest.mark.parametrize("case, split", [_param(c, s) for c in CASES for s in c.splits if c.name not in HEAVY])
def test_ingest_then_build(
    case: Case, split: str, shared_datasets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    _ingest(case, shared_datasets, home, monkeypatch, capsys)
    store = Warehouse(home)
    raw_before = {d: store.stored_stats(contracts.RAW_EVENTS, d) for d in store.partitions(contracts.RAW_EVENTS)}

    code = main(["build", "--select", BUILD_LAYERS, "--split", split])
    assert code == 0, capsys.readouterr().err

    assert {d: store.stored_stats(contracts.RAW_EVENTS, d) for d in store.partitions(contracts.RAW_EVENTS)} == raw_before
    with connect_catalog(home) as con:
        events = con.execute("SELECT count(*) FROM raw_events").fetchone()[0]
        interactions = con.execute("SELECT count(*) FROM core_interactions").fetchone()[0]
        users = con.execute("SELECT count(DISTINCT user_idx) FROM core_interactions").fetchone()[0]
        test_rows = con.execute("SELECT count(*) FROM training_data_sequence_shards_test").fetchone()[0]
        train_rows = con.execute("SELECT count(*) FROM training_data_sequence_shards_train").fetchone()[0]
    assert 0 < interactions <= events
    assert train_rows > 0 and 0 < test_rows <= users
