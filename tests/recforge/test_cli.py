"""The ``recforge`` command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from warehouse.catalog import refresh_catalog
from warehouse.contracts import RAW_USERS
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
