"""The sample world: exact raw formats, counted defects, determinism, and a truth that matches the logs.

Worlds are tiny and built once per module. The truth is checked against the *logs* (what ingestion will
read), not against itself: clicks are read back from events.jsonl, positions from impressions.jsonl.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sample_world.generate
from sample_world import (
    EVENT_TYPES,
    LATENT_DIM,
    CatalogFormat,
    Surface,
    WorldConfig,
    WorldSummary,
    examination_curve,
    generate_world,
)
from sample_world.policy import _first_distinct, _plackett_luce_steps
from sample_world.traffic import _alias_table

# Defect shares ten times the defaults, so that a tiny world has malformed and duplicate lines to count.
SMALL = WorldConfig(users=300, items=200, days=3, seed=11, bad_share=0.02, dup_share=0.02, cold_start_share=0.2)
# Mostly uniform-random traffic, large enough that click rates per position are known to ~0.01.
EXPLORATION = WorldConfig(users=20_000, items=400, days=3, seed=5, exploration_share=0.9, bad_share=0.0,
                          dup_share=0.0, requests_per_user_day=2.0)

TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ID = {"user": re.compile(r"^u\d{7}$"), "item": re.compile(r"^i\d{7}$"), "request": re.compile(r"^r\d+$"),
      "event": re.compile(r"^e\d+$"), "review": re.compile(r"^v\d+$"), "session": re.compile(r"^s\d+$")}

# Field order and value checks of every JSONL log, as in docs/raw_formats.md.
Check = Callable[[object], bool]


def is_str(pattern: re.Pattern[str]) -> Check:
    return lambda v: isinstance(v, str) and bool(pattern.match(v))


def is_int(lo: int, hi: int) -> Check:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def is_text(v: object) -> bool:
    return isinstance(v, str) and len(v) > 0


def nullable(check: Check) -> Check:
    return lambda v: v is None or check(v)


SPEC: dict[str, dict[str, Check]] = {
    "impressions": {"request_id": is_str(ID["request"]), "user_id": is_str(ID["user"]), "item_id": is_str(ID["item"]),
                    "position": is_int(0, 9), "ts": is_str(TS)},
    "events": {"event_id": is_str(ID["event"]), "user_id": is_str(ID["user"]), "ts": is_str(TS),
               "event_type": lambda v: v in EVENT_TYPES, "item_id": is_str(ID["item"]),
               "request_id": nullable(is_str(ID["request"])),
               "value": nullable(lambda v: isinstance(v, float) and v > 0), "session_id": nullable(is_str(ID["session"]))},
    "reviews": {"review_id": is_str(ID["review"]), "user_id": is_str(ID["user"]), "item_id": is_str(ID["item"]),
                "ts": is_str(TS), "rating": is_int(1, 5), "title": is_text, "text": is_text,
                "helpful_votes": is_int(0, 10**6)},
    "items": {"item_id": is_str(ID["item"]), "title": is_text, "description": is_text,
              "categories": lambda v: isinstance(v, list) and len(v) == 2 and all(isinstance(c, str) for c in v),
              "brand": is_text, "price": lambda v: isinstance(v, float) and v > 0,
              "attributes": lambda v: isinstance(v, dict) and set(v) == {"color", "material"},
              "available_from": is_str(TS)},
}


def line_problem(log: str, line: str, day: dt.date | None) -> str | None:
    """Why a line is not a valid record of ``log`` (None when it is); ``day``: the file's day."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return "invalid_json"
    if not isinstance(row, dict) or list(row) != list(SPEC[log]):
        return "keys"
    for key, check in SPEC[log].items():
        if not check(row[key]):
            return f"value:{key}"
    if day is not None and not row["ts"].startswith(day.isoformat()):
        return "ts_outside_day"
    if log == "events" and (row["event_type"] == "view") != (row["value"] is not None):
        return "value_not_dwell"
    if log == "events" and (row["event_type"] == "click") != (row["request_id"] is not None):
        return "request_id_not_on_click"
    return None


def jsonl_files(root: Path) -> list[tuple[str, Path, dt.date | None]]:
    files: list[tuple[str, Path, dt.date | None]] = [("items", root / "catalog" / "items.jsonl", None)]
    for log in ("impressions", "events", "reviews"):
        files += [(log, p, dt.date.fromisoformat(p.stem)) for p in sorted((root / log).glob("*.jsonl"))]
    return files


def read_valid(root: Path, log: str) -> pd.DataFrame:
    """The clean records of a log (valid lines, exact duplicates dropped)."""
    lines = {line: None for kind, path, day in jsonl_files(root) if kind == log
             for line in path.read_text().splitlines() if line_problem(log, line, day) is None}
    return pd.DataFrame([json.loads(line) for line in lines], columns=list(SPEC[log]))


def all_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[WorldSummary, Path]:
    root = tmp_path_factory.mktemp("small") / "world"
    return generate_world(SMALL, root), root


@pytest.fixture(scope="module")
def exploration(tmp_path_factory: pytest.TempPathFactory) -> tuple[WorldSummary, Path]:
    root = tmp_path_factory.mktemp("exploration") / "world"
    return generate_world(EXPLORATION, root), root


# ------------------------------------------------------------------------------------------------
# Determinism


def test_same_config_gives_byte_identical_files_whatever_the_workers(
    small: tuple[WorldSummary, Path], tmp_path: Path
) -> None:
    _, first = small
    again = generate_world(SMALL, tmp_path / "again", workers=2)
    assert again.out_dir == tmp_path / "again"
    assert all_bytes(tmp_path / "again") == all_bytes(first)


def test_another_seed_gives_another_world(small: tuple[WorldSummary, Path], tmp_path: Path) -> None:
    _, first = small
    generate_world(dataclasses.replace(SMALL, seed=SMALL.seed + 1), tmp_path / "other")
    a, b = all_bytes(first), all_bytes(tmp_path / "other")
    assert a.keys() == b.keys()
    assert a["events/2026-01-01.jsonl"] != b["events/2026-01-01.jsonl"]
    assert a["catalog/items.jsonl"] != b["catalog/items.jsonl"]


# ------------------------------------------------------------------------------------------------
# Formats (docs/raw_formats.md)


def test_layout_and_world_json(small: tuple[WorldSummary, Path]) -> None:
    summary, root = small
    days = ["2026-01-01", "2026-01-02", "2026-01-03"]
    for log, ext in (("slates", "parquet"), ("impressions", "jsonl"), ("events", "jsonl"), ("reviews", "jsonl"),
                     ("truth/served", "parquet")):
        assert sorted(p.name for p in (root / log).iterdir()) == [f"{d}.{ext}" for d in days]
    doc = json.loads((root / "world.json").read_text())
    assert doc["config"]["users"] == SMALL.users and doc["config"]["start_date"] == "2026-01-01"
    assert doc["config"]["catalog_format"] == "jsonl" and doc["config"]["surfaces"] == ["home", "related"]
    assert doc["counts"]["bad_lines"] == summary.bad_lines
    assert doc["counts"]["duplicate_lines"] == summary.duplicate_lines
    assert doc["counts"]["events"] == summary.events
    assert "seconds" not in json.dumps(doc)  # wall-clock time would break byte-identical reruns


def test_slates_parquet_schema_and_values(small: tuple[WorldSummary, Path]) -> None:
    summary, root = small
    expected = pa.schema([
        ("request_id", pa.string()), ("user_id", pa.string()), ("ts", pa.timestamp("ms", tz="UTC")),
        ("surface", pa.string()), ("item_ids", pa.list_(pa.string())), ("policy", pa.string()),
        ("propensities", pa.list_(pa.float64())),
    ])
    table = pq.read_table(root / "slates" / "2026-01-02.parquet")
    assert table.schema.equals(expected)
    slates = pq.read_table(root / "slates").to_pandas()
    assert len(slates) == summary.slates and slates.request_id.is_unique
    assert set(slates.surface) == {"home", "related"}
    assert set(slates.policy) == {"popularity", "uniform_random"}
    assert all(len(ids) == SMALL.slate_size and len(set(ids)) == SMALL.slate_size for ids in slates.item_ids)
    assert slates.ts.dt.date.astype(str).isin(["2026-01-01", "2026-01-02", "2026-01-03"]).all()
    assert slates.ts.is_monotonic_increasing  # one day after the other, each in time order
    logged = slates.propensities.dropna()
    assert 0.4 < len(logged) / len(slates) < 0.6  # propensity_logged_share = 0.5
    values = np.concatenate(logged.to_numpy())
    assert len(values) == len(logged) * SMALL.slate_size
    assert ((values > 0) & (values <= 1)).all()


def line_census(root: Path) -> tuple[Counter[str], Counter[str], Counter[str], dict[str, Counter[str]]]:
    """Per log: malformed lines, exact duplicates of valid lines, distinct valid lines; and why lines are bad."""
    bad: Counter[str] = Counter()
    duplicates: Counter[str] = Counter()
    clean: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = {}
    for log, path, day in jsonl_files(root):
        seen: set[str] = set()
        text = path.read_text()
        assert text.endswith("\n")
        for line in text.splitlines():
            problem = line_problem(log, line, day)
            if problem is not None:
                bad[log] += 1
                reasons.setdefault(log, Counter())[problem] += 1
            elif line in seen:
                duplicates[log] += 1
            else:
                seen.add(line)
                clean[log] += 1
    return bad, duplicates, clean, reasons


def test_jsonl_lines_are_exact_records_or_counted_as_bad(small: tuple[WorldSummary, Path]) -> None:
    summary, root = small
    bad, duplicates, clean, _ = line_census(root)
    assert dict(bad) == {k: v for k, v in summary.bad_lines_by_log.items() if v}
    assert sum(bad.values()) == summary.bad_lines > 0
    assert dict(duplicates) == {k: v for k, v in summary.duplicate_lines_by_log.items() if v}
    assert sum(duplicates.values()) == summary.duplicate_lines > 0
    assert clean == Counter(items=summary.items, impressions=summary.impressions, events=summary.events,
                            reviews=summary.reviews)
    assert abs(summary.bad_lines / sum(clean.values()) - SMALL.bad_share) < 0.01


def test_every_kind_of_defect_is_written(tmp_path: Path) -> None:
    # A third of the lines broken, every purchase reviewed: each log shows each of its defects.
    config = WorldConfig(users=300, items=100, days=2, bad_share=0.3, dup_share=0.0, review_share=1.0)
    summary = generate_world(config, tmp_path / "w")
    bad, _, _, reasons = line_census(tmp_path / "w")
    assert sum(bad.values()) == summary.bad_lines
    timestamp = {"value:ts", "ts_outside_day"}  # unparseable, or a valid-looking date of another day
    # A missing user_id/item_id breaks the exact key list.
    expected = {
        "items": [{"invalid_json"}, {"keys"}, {"value:price"}],
        "impressions": [{"invalid_json"}, {"keys"}, timestamp],
        "events": [{"invalid_json"}, {"keys"}, timestamp, {"value:event_type"}],
        "reviews": [{"invalid_json"}, {"keys"}, timestamp, {"value:rating"}],
    }
    for log, kinds in expected.items():
        for kind in kinds:
            assert kind & set(reasons[log]), (log, kind, reasons[log])


def test_timestamps_of_a_day_file_are_that_day_in_time_order(small: tuple[WorldSummary, Path]) -> None:
    _, root = small
    for log in ("impressions", "events", "reviews"):
        for path in sorted((root / log).glob("*.jsonl")):
            stamps = [json.loads(line)["ts"] for line in path.read_text().splitlines()
                      if line_problem(log, line, dt.date.fromisoformat(path.stem)) is None]
            assert stamps == sorted(stamps), path


def test_catalog_csv_variant(tmp_path: Path) -> None:
    config = WorldConfig(users=50, items=300, days=1, catalog_format=CatalogFormat.CSV, bad_share=0.05, dup_share=0.0)
    summary = generate_world(config, tmp_path / "w")
    with open(tmp_path / "w" / "catalog" / "items.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    header = ["item_id", "title", "description", "categories", "brand", "price", "attributes", "available_from"]
    assert rows[0] == header
    good = bad = 0
    for row in rows[1:]:
        ok = (len(row) == len(header) and bool(ID["item"].match(row[0])) and bool(TS.match(row[7]))
              and re.fullmatch(r"\d+\.\d\d", row[5]) is not None)
        if ok:
            top, path = row[3].split("|")
            assert path.startswith(f"{top} > ")
            assert set(json.loads(row[6])) == {"color", "material"}
        good, bad = good + ok, bad + (not ok)
    assert (good, bad) == (summary.items, summary.bad_lines_by_log["items"]) and bad > 0
    assert not (tmp_path / "w" / "catalog" / "items.jsonl").exists()


def test_users_csv(small: tuple[WorldSummary, Path]) -> None:
    _, root = small
    with open(root / "catalog" / "users.csv", newline="") as fh:
        users = list(csv.DictReader(fh))
    assert list(users[0]) == ["user_id", "signup_date", "country", "age_band"]
    assert len(users) == SMALL.users
    assert all(dt.date.fromisoformat(u["signup_date"]) < SMALL.start_date for u in users)
    assert {u["age_band"] for u in users} <= {"18-24", "25-34", "35-44", "45-54", "55-64", "65+"}


# ------------------------------------------------------------------------------------------------
# Truth consistent with the logs


def test_impressions_are_exactly_the_rendered_served_slots(small: tuple[WorldSummary, Path]) -> None:
    _, root = small
    served = pq.read_table(root / "truth" / "served").to_pandas()
    assert (served.impressed == (served.position < served.viewport)).all()
    assert (served.examination_prob[~served.impressed] == 0).all()
    assert not (served.examined & ~served.impressed).any()  # unrendered slots are never examined
    assert (served.clicked == (served.examined & served.relevant)).all()
    impressions = read_valid(root, "impressions")
    logged = set(zip(impressions.request_id, impressions.item_id, impressions.position, strict=True))
    truth = served[served.impressed]
    assert logged == set(zip(truth.request_id, truth.item_id, truth.position, strict=True))


def test_every_click_has_an_earlier_impression_and_matches_the_truth(small: tuple[WorldSummary, Path]) -> None:
    _, root = small
    impressions = read_valid(root, "impressions").set_index(["request_id", "item_id"])
    events = read_valid(root, "events")
    clicks = events[events.event_type == "click"]
    joined = clicks.join(impressions[["ts"]], on=["request_id", "item_id"], rsuffix="_impression")
    assert joined.ts_impression.notna().all()
    assert (joined.ts >= joined.ts_impression).all()
    served = pq.read_table(root / "truth" / "served").to_pandas()
    truth = served[served.clicked]
    assert Counter(zip(clicks.request_id, clicks.item_id, strict=True)) == Counter(
        zip(truth.request_id, truth.item_id, strict=True))
    # Each click is followed by a view of the same item by the same user.
    views = events[events.event_type == "view"]
    assert Counter(zip(views.user_id, views.item_id, strict=True)) == Counter(
        zip(clicks.user_id, clicks.item_id, strict=True))


def test_sessions_are_separated_by_long_gaps(small: tuple[WorldSummary, Path]) -> None:
    _, root = small
    events = read_valid(root, "events").dropna(subset=["session_id"])
    events["t"] = pd.to_datetime(events.ts)
    events = events.sort_values(["user_id", "t"], kind="stable")
    same_user = events.user_id.eq(events.user_id.shift())
    gap = events.t.diff().dt.total_seconds()
    new_session = events.session_id.ne(events.session_id.shift())
    # Within a session events are seconds to minutes apart, sessions of a user are > 30 min apart.
    assert (gap[same_user & ~new_session] < 30 * 60).all()
    assert (gap[same_user & new_session] > 30 * 60).all()
    assert events.session_id.nunique() > 50


def test_cold_start_items_are_never_served_before_they_exist(small: tuple[WorldSummary, Path]) -> None:
    _, root = small
    items = pq.read_table(root / "truth" / "items.parquet").to_pandas().set_index("item_id")
    slates = pq.read_table(root / "slates").to_pandas().explode("item_ids")
    available_from = items.available_from.loc[slates.item_ids].to_numpy()
    assert (available_from <= slates.ts.to_numpy()).all()
    cold = items[items.cold_start]
    assert len(cold) > 10 and (cold.available_from > pd.Timestamp(SMALL.start_date, tz="UTC")).all()
    assert cold.index.isin(slates.item_ids).any()  # they are served once they exist


def test_uniform_random_propensities_are_one_over_the_available_items(small: tuple[WorldSummary, Path]) -> None:
    _, root = small
    items = pq.read_table(root / "truth" / "items.parquet").to_pandas()
    slates = pq.read_table(root / "slates").to_pandas()
    uniform = slates[(slates.policy == "uniform_random") & slates.propensities.notna()]
    assert len(uniform) > 10
    for ts, propensities in zip(uniform.ts, uniform.propensities, strict=True):
        n_available = int((items.available_from <= ts).sum())
        # P(item in slot) is the same at every slot (the step probability 1 / (n - k) is not it).
        np.testing.assert_allclose(propensities, np.full(SMALL.slate_size, 1.0 / n_available))


def test_popularity_slates_are_plackett_luce_draws(tmp_path: Path) -> None:
    # Pure popularity on one surface: every request shares one distribution, so the logged slot-0
    # propensities can be checked against popularity and the slots against the empirical frequencies.
    config = WorldConfig(users=3000, items=12, days=1, slate_size=3, surfaces=(Surface.HOME,), personalization=0.0,
                         exploration_share=0.0, cold_start_share=0.0, bad_share=0.0, dup_share=0.0)
    generate_world(config, tmp_path / "w")
    items = pq.read_table(tmp_path / "w" / "truth" / "items.parquet").to_pandas().set_index("item_id")
    served = pq.read_table(tmp_path / "w" / "truth" / "served").to_pandas()
    share = items.popularity / items.popularity.sum()
    first = served[served.position == 0]
    np.testing.assert_allclose(first.propensity, share.loc[first.item_id].to_numpy(), rtol=1e-9)
    empirical = first.item_id.value_counts(normalize=True).reindex(share.index, fill_value=0.0)
    se = np.sqrt(share * (1 - share) / len(first))
    assert (np.abs(empirical - share) < 4 * se + 1e-3).all()
    # Slot 1 given slot 0: popularity renormalized over the items not yet placed.
    slots = served.pivot(index="request_id", columns="position", values="item_id")
    top = slots[0].value_counts().index[0]
    after_top = slots[slots[0] == top][1].value_counts(normalize=True)
    expected = share.drop(top) / share.drop(top).sum()
    se = np.sqrt(expected * (1 - expected) / int((slots[0] == top).sum()))
    assert (np.abs(after_top.reindex(expected.index, fill_value=0.0) - expected) < 4 * se + 1e-3).all()


def test_examination_curve_is_recovered_from_the_uniform_random_bucket(
    exploration: tuple[WorldSummary, Path],
) -> None:
    # Uniform slates make position independent of relevance, so clicks / expected relevance per position
    # is the examination curve (clicks read from events.jsonl, positions from impressions.jsonl).
    _, root = exploration
    con = duckdb.connect()
    per_position = con.sql(f"""
        with imp as (select request_id, item_id, position from read_json('{root}/impressions/*.jsonl')),
             clk as (select distinct request_id, item_id from read_json('{root}/events/*.jsonl')
                     where event_type = 'click'),
             srv as (select request_id, position, relevance_prob, surface, policy
                     from read_parquet('{root}/truth/served/*.parquet'))
        select srv.surface, imp.position, count(*) as n, sum(srv.relevance_prob) as expected,
               sum(srv.relevance_prob * (1 - srv.relevance_prob)) as var_part,
               count(clk.request_id) as clicks
        from imp join srv using (request_id, position)
        left join clk using (request_id, item_id)
        where srv.policy = 'uniform_random'
        group by all order by all
    """).df()
    tolerance = 0.05
    tested = Counter[str]()
    for surface, group in per_position.groupby("surface"):
        curve = examination_curve(str(surface), EXPLORATION.slate_size)
        wrong = examination_curve("related" if surface == "home" else "home", EXPLORATION.slate_size)
        rejects_wrong_curve = False
        for row in group.itertuples():
            estimate = row.clicks / row.expected
            # Binomial standard error of the click count at the true curve value.
            se = np.sqrt(curve[row.position] * row.expected) / row.expected
            if 4 * se > tolerance:
                continue  # too few impressions at this depth to test at this tolerance
            tested[str(surface)] += 1
            assert abs(estimate - curve[row.position]) < tolerance, (surface, row.position, estimate)
            rejects_wrong_curve |= abs(estimate - wrong[row.position]) >= tolerance
        assert rejects_wrong_curve, surface  # the test would fail with the other surface's curve
    assert tested["home"] >= 5 and tested["related"] >= 2, tested


def test_relevance_has_a_realistic_spread_and_drives_ratings(exploration: tuple[WorldSummary, Path]) -> None:
    _, root = exploration
    con = duckdb.connect()
    spread = con.execute(f"""select min(relevance_prob), max(relevance_prob), stddev(relevance_prob),
                                avg(relevance_prob) from read_parquet('{root}/truth/served/*.parquet')""").fetchone()
    assert spread is not None
    lo, hi, sd, mean = spread
    assert lo > 0 and hi < 1 and sd > 0.1 and 0.05 < mean < 0.4
    ratings = con.execute(f"""
        with rel as (select user_id, item_id, avg(relevance_prob) as relevance
                     from read_parquet('{root}/truth/served/*.parquet') group by all)
        select corr(r.rating, rel.relevance), count(*)
        from read_json('{root}/reviews/*.jsonl') r join rel using (user_id, item_id)
    """).fetchone()
    assert ratings is not None and ratings[1] > 100 and ratings[0] > 0.3


def test_truth_items_and_users(small: tuple[WorldSummary, Path]) -> None:
    summary, root = small
    items = pq.read_table(root / "truth" / "items.parquet").to_pandas()
    served = pq.read_table(root / "truth" / "served").to_pandas()
    assert len(items) == SMALL.items and items.latent.map(len).eq(LATENT_DIM).all()
    impressions = served[served.impressed].item_id.value_counts().reindex(items.item_id, fill_value=0)
    np.testing.assert_array_equal(items.impressions, impressions.to_numpy())
    np.testing.assert_allclose(items.exposure_prob, impressions.to_numpy() / summary.slates)
    users = pq.read_table(root / "truth" / "users.parquet").to_pandas()
    categories = json.loads((root / "world.json").read_text())["categories"]
    assert len(users) == SMALL.users and users.taste.map(len).eq(len(categories)).all()
    np.testing.assert_allclose(users.taste.map(sum), 1.0, rtol=1e-5)
    examination = json.loads((root / "truth" / "examination.json").read_text())
    assert examination["surfaces"]["home"]["curve"] == examination_curve("home", SMALL.slate_size).tolist()


def test_similar_items_share_words(small: tuple[WorldSummary, Path]) -> None:
    _, root = small
    catalog = read_valid(root, "items")
    words = [set(re.findall(r"[a-z]+", (t + " " + d).lower())) for t, d in zip(catalog.title, catalog.description, strict=True)]
    paths = catalog.categories.map(lambda c: c[1]).to_numpy()
    tops = catalog.categories.map(lambda c: c[0]).to_numpy()
    same, other = [], []
    for i in range(len(words)):
        for j in range(i + 1, len(words)):
            jaccard = len(words[i] & words[j]) / len(words[i] | words[j])
            if paths[i] == paths[j]:
                same.append(jaccard)
            elif tops[i] != tops[j]:
                other.append(jaccard)
    assert np.mean(same) > np.mean(other) + 0.15


# ------------------------------------------------------------------------------------------------
# Pieces: vectorized code against plain loops, config and directory handling


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 6), min_size=8, max_size=8), min_size=1, max_size=6), st.integers(1, 4))
def test_first_distinct_matches_a_loop(rows: list[list[int]], k: int) -> None:
    chosen, complete = _first_distinct(np.array(rows), k)
    expected = []
    for row in rows:
        firsts = list(dict.fromkeys(row))
        if len(firsts) >= k:
            expected.append(firsts[:k])
    assert complete.tolist() == [len(set(row)) >= k for row in rows]
    assert chosen.tolist() == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.01, 100.0), min_size=1, max_size=30))
def test_alias_table_reproduces_the_weights(weights: list[float]) -> None:
    w = np.array(weights)
    accept, alias = _alias_table(w)
    n = len(w)
    implied = accept / n
    np.add.at(implied, alias, (1 - accept) / n)
    np.testing.assert_allclose(implied, w / w.sum(), atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.01, 10.0), min_size=4, max_size=12), st.integers(1, 4))
def test_plackett_luce_steps_match_a_loop(weights: list[float], k: int) -> None:
    w = np.array(weights)
    slate = w[:k][None, :]
    remaining, expected = w.sum(), []
    for value in w[:k]:
        expected.append(value / remaining)
        remaining -= value
    np.testing.assert_allclose(_plackett_luce_steps(slate, np.array([w.sum()]))[0], expected, rtol=1e-12)


def test_examination_curve_values() -> None:
    np.testing.assert_allclose(examination_curve("home", 4), [1, 1 / 2, 1 / 3, 1 / 4])
    np.testing.assert_allclose(examination_curve(Surface.RELATED, 3), [1, 2**-0.5, 3**-0.5])
    with pytest.raises(ValueError):
        examination_curve("search", 3)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="bad_share"):
        WorldConfig(bad_share=1.5)
    with pytest.raises(ValueError):
        WorldConfig(surfaces=("home", "checkout"))  # type: ignore[arg-type]
    # Plain strings (from JSON or the command line) become the enum members.
    assert WorldConfig(surfaces=("home",)).surfaces == (Surface.HOME,)  # type: ignore[arg-type]


def test_too_few_items_for_a_slate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="slate_size"):
        generate_world(WorldConfig(users=5, items=5, days=1, slate_size=10), tmp_path / "w")


def test_an_existing_world_is_replaced_but_other_folders_are_not(tmp_path: Path) -> None:
    config = WorldConfig(users=20, items=30, days=2)
    generate_world(config, tmp_path / "w")
    generate_world(WorldConfig(users=20, items=30, days=1), tmp_path / "w")
    assert sorted(p.name for p in (tmp_path / "w" / "events").iterdir()) == ["2026-01-01.jsonl"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="refusing"):
        generate_world(config, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_a_failed_generation_leaves_the_previous_world_and_no_temporaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One day, then a generation that dies after the day files but before the truth: the one-day world stays.
    generate_world(WorldConfig(users=20, items=30, days=1), tmp_path / "w")
    before = all_bytes(tmp_path / "w")

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(sample_world.generate, "_write_truth", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_world(WorldConfig(users=20, items=30, days=2), tmp_path / "w")
    assert all_bytes(tmp_path / "w") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]
