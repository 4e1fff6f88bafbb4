"""The ``recforge`` command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from tests.connector_files import connector_root
from warehouse.catalog import refresh_catalog
from warehouse.contracts import CORE_INTERACTIONS, RAW_EVENTS, RAW_USERS
from warehouse.store import Warehouse

REPO = Path(__file__).resolve().parents[2]


def recforge(*args: str, home: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RECFORGE_HOME": str(home), "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "recforge.cli", *args], env=env, capture_output=True, text=True, input=stdin, timeout=300, check=False
    )


def users_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    table = pa.table({"user_id": ["alice", "bob"], "attributes": ['{"country": "NO"}', None]}, schema=RAW_USERS.schema)
    Warehouse(home).write(RAW_USERS, table)
    refresh_catalog(home)
    return home


def test_sql_runs_one_query_and_prints_a_table(tmp_path: Path) -> None:
    home = users_home(tmp_path)
    result = recforge("sql", "select user_id from raw_users order by 1", home=home)

    assert result.returncode == 0, result.stderr
    assert "alice" in result.stdout and "bob" in result.stdout
    assert "user_id" in result.stdout


def test_sql_json_format_and_errors(tmp_path: Path) -> None:
    home = users_home(tmp_path)
    result = recforge("sql", "select count(*) as n from raw_users", "--format", "json", home=home)
    assert json.loads(result.stdout) == [{"n": 2}]

    broken = recforge("sql", "select * from no_such_table", home=home)
    assert broken.returncode != 0
    assert "no_such_table" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_sql_shell_reads_statements_until_semicolon(tmp_path: Path) -> None:
    home = users_home(tmp_path)
    result = recforge("sql", home=home, stdin=".tables\nselect count(*)\n  as n from raw_users;\nselect nope;\n.quit\n")

    assert result.returncode == 0, result.stderr
    assert "raw_users" in result.stdout
    assert "2" in result.stdout
    assert "Error:" in result.stdout  # a bad statement reports and the shell goes on


def test_world_command_writes_the_documented_layout(tmp_path: Path) -> None:
    out = tmp_path / "world"
    result = recforge("world", "--users", "50", "--items", "40", "--days", "2", "--seed", "5", "--out", str(out), home=tmp_path)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["users"] == 50
    for expected in ("catalog/items.jsonl", "catalog/users.csv", "slates/2026-01-02.parquet",
                     "events/2026-01-01.jsonl", "impressions/2026-01-02.jsonl", "truth/examination.json"):
        assert (out / expected).exists(), expected


# --- recforge build: the layers below raw from the raw tables as they are --------------------------

ML_1M = connector_root() / "movielens" / "ml-1m"  # tests/connector_files.py


def ingested_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    ingested = recforge("ingest", "movielens", "--path", str(ML_1M), "--max-bad-share", "1", home=home)
    assert ingested.returncode == 0, ingested.stderr
    return home


def test_build_materializes_the_layers_below_raw_and_never_touches_raw_or_landing(tmp_path: Path) -> None:
    home = ingested_home(tmp_path)
    store = Warehouse(home)
    raw_before = {d: store.stored_stats(RAW_EVENTS, d) for d in store.partitions(RAW_EVENTS)}

    result = recforge("build", "--select", "core", home=home)

    assert result.returncode == 0, result.stderr
    assert "built core/interactions" in result.stdout and "built core/id_maps" in result.stdout
    assert "built raw/" not in result.stdout
    assert {d: store.stored_stats(RAW_EVENTS, d) for d in store.partitions(RAW_EVENTS)} == raw_before
    assert not (home / "landing").exists()
    assert store.read(CORE_INTERACTIONS).num_rows == 2  # the fixture's two valid ratings
    # No import-time noise from Beam or Dagster on the way.
    assert "apitools" not in result.stderr and "BetaWarning" not in result.stderr, result.stderr


def test_build_errors_are_one_line_unless_verbose(tmp_path: Path) -> None:
    home = ingested_home(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text("ops:\n  training_data__sequence_shards:\n    config: {split_kind: sideways}\n")

    refused = recforge("build", "--select", "core,training_data", "--config", str(config), home=home)

    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    first = refused.stderr.strip().splitlines()[0]
    assert first.startswith("recforge build: ") and "'sideways' is not supported here" in first
    assert "temporal, leave_one_out" in first
    verbose = recforge("build", "--select", "core,training_data", "--config", str(config), "--verbose", home=home)
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr
    unknown = recforge("build", "--select", "nonsense", home=home)
    assert unknown.returncode == 1 and "unknown layer(s) nonsense" in unknown.stderr


def test_build_on_an_empty_warehouse_says_what_to_do_first(tmp_path: Path) -> None:
    result = recforge("build", home=tmp_path / "empty")
    assert result.returncode == 1
    assert "recforge ingest" in result.stderr and "Traceback" not in result.stderr


def test_run_config_accepts_enum_values_as_the_docs_spell_them() -> None:
    from recforge.definitions import defs
    from recforge.materialize import RunConfigError, merge_run_config, normalize_run_config, split_run_config

    documented = {"ops": {"training_data__sequence_shards": {"config": {"split_kind": "leave_one_out", "max_len": 50}}}}
    assert normalize_run_config(defs.assets, documented)["ops"]["training_data__sequence_shards"]["config"] == {
        "split_kind": "LEAVE_ONE_OUT", "max_len": 50
    }
    dagster_spelling = {"ops": {"training_data__sequence_shards": {"config": {"split_kind": "LEAVE_ONE_OUT"}}}}
    assert normalize_run_config(defs.assets, dagster_spelling) == dagster_spelling
    # --split reaches every training-data asset and wins over the file; other keys of the file stay.
    merged = normalize_run_config(defs.assets, merge_run_config(documented, split_run_config(defs, "temporal")))
    assert merged["ops"]["training_data__sequence_shards"]["config"] == {"split_kind": "TEMPORAL", "max_len": 50}
    assert all(op["config"]["split_kind"] == "TEMPORAL" for op in merged["ops"].values())
    # Under leave-one-out the held-out interactions must also leave the text: --split reaches the enrichment ops.
    assert {"enrichment_item_descriptions", "enrichment_user_profiles"} <= set(split_run_config(defs, "leave-one-out")["ops"])
    with pytest.raises(RunConfigError, match="'sideways' is not supported"):
        normalize_run_config(defs.assets, split_run_config(defs, "sideways"))


def test_the_training_data_split_settings_reach_the_generated_text() -> None:
    """A run config that gives one training-data asset leave-one-out and a k-core (not --split) must still hold the
    split's steps out of the item and user text: the settings reach every asset with those fields."""
    from recforge.definitions import defs
    from recforge.materialize import RunConfigError, with_training_settings

    given = {"ops": {"training_data__training_window": {"config": {"split_kind": "leave_one_out", "k_core": 5}},
                     "enrichment_user_profiles": {"config": {"event_types": ["purchase"]}}}}
    ops = with_training_settings(defs, given)["ops"]
    for name in ("enrichment_item_descriptions", "enrichment_user_profiles", "training_data__sequence_shards"):
        assert ops[name]["config"]["split_kind"] == "leave_one_out" and ops[name]["config"]["k_core"] == 5, name
    assert ops["enrichment_user_profiles"]["config"]["event_types"] == ["purchase"]  # given there: kept
    assert "event_types" not in ops["enrichment_item_descriptions"]["config"]  # given nowhere in the training data
    conflicting = {"ops": {"training_data__training_window": {"config": {"k_core": 5}}, "training_data__user_sequences": {"config": {"k_core": 3}}}}
    with pytest.raises(RunConfigError, match="different k_core"):
        with_training_settings(defs, conflicting)
