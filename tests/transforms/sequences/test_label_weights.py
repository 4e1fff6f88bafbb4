"""The label-weight join: each event's weight only from label rows its split may see; DuckDB and Spark agree."""

from __future__ import annotations

import random
from collections import defaultdict

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.transforms.sequences.helpers import HOUR, T0, event, interactions, label, labels
from transforms.cutoffs import Cutoffs, Split
from transforms.engine import Engine
from transforms.sequences.label_weights import (
    check_label_splits,
    label_weights_for_split,
    label_weights_within_splits,
)

# Train is the first day, valid the second, test the rest.
CUTOFFS = Cutoffs(T0 + 24 * HOUR, T0 + 48 * HOUR)

# u1 clicked i1 in the train split (e1), i2 in valid (e2) and i3 in test (e3); u2 clicked i1 in valid (e4).
EVENTS = interactions([
    event("e1", 1, 1, 10, request="r1"), event("e2", 1, 2, 30, request="r2"),
    event("e3", 1, 3, 50, request="r3"), event("e4", 2, 1, 40, request="r4"),
])
# e1's slot was logged twice, once after train_end (its propensity saw valid data); e2 has a train and a
# valid row; e3 a valid and a test row; e4 only a test row (clock skew past valid_end).
LABELS = labels([
    label("r1", 1, 1, 10, "train", 2.0), label("r1", 1, 1, 25, "valid", 50.0),
    label("r2", 1, 2, 20, "train", 3.0), label("r2", 1, 2, 30, "valid", 5.0),
    label("r3", 1, 3, 40, "valid", 7.0), label("r3", 1, 3, 50, "test", 9.0),
    label("r4", 2, 1, 49, "test", 4.0),
])


def weights(table: pa.Table) -> dict[str, float]:
    return {r["event_id"]: r["weight"] for r in table.to_pylist()}


def test_each_event_takes_weights_from_its_split_or_earlier(duckdb_engine: Engine) -> None:
    got = weights(label_weights_within_splits(duckdb_engine, EVENTS, LABELS, CUTOFFS))
    # e1 (train): the train row only; e2 (valid): train and valid rows averaged; e3 (test): both rows;
    # e4 (valid) has only a test row: no weight (it weighs 1 downstream).
    assert got == {"e1": 2.0, "e2": 4.0, "e3": 8.0}


def test_leave_one_out_counts_every_label_row(duckdb_engine: Engine) -> None:
    got = weights(label_weights_for_split(duckdb_engine, EVENTS, LABELS, None))
    assert got == {"e1": 26.0, "e2": 4.0, "e3": 8.0, "e4": 4.0}
    assert weights(label_weights_for_split(duckdb_engine, EVENTS, LABELS, CUTOFFS)) == {"e1": 2.0, "e2": 4.0, "e3": 8.0}


def test_labels_built_with_other_cutoffs_are_refused(duckdb_engine: Engine) -> None:
    check_label_splits(LABELS, CUTOFFS)  # consistent: no error
    moved = Cutoffs(T0 + 12 * HOUR, T0 + 48 * HOUR)  # r1's 10h row stays train, r2's 20h row would be valid
    with pytest.raises(ValueError, match="1 rows whose split disagrees"):
        label_weights_within_splits(duckdb_engine, EVENTS, LABELS, moved)


def test_a_label_on_the_cutoff_belongs_to_the_later_split() -> None:
    on_cutoff = labels([label("r1", 1, 1, 24, "valid", 1.0), label("r2", 1, 1, 48, "test", 1.0)])
    check_label_splits(on_cutoff, CUTOFFS)
    with pytest.raises(ValueError):
        check_label_splits(labels([label("r1", 1, 1, 24, "train", 1.0)]), CUTOFFS)


def reference(events: list[dict], rows: list[dict], cutoffs: Cutoffs) -> dict[str, float]:
    """The rule in plain Python: average the observed rows of the event's slot (or, without a request,
    of its user, item and time) whose split is the event's or an earlier one."""
    order = list(Split)
    out = {}
    for e in events:
        visible = order[: order.index(cutoffs.split_of(e["ts"])) + 1]
        found = defaultdict(list)
        for r in rows:
            if r["observed"] != 1 or Split(r["split"]) not in visible or (r["user_id"], r["item_id"]) != (e["user_id"], e["item_id"]):
                continue
            if (r["request_id"] is not None and r["request_id"] == e["request_id"]) or (r["request_id"] is None and e["request_id"] is None and r["ts"] == e["ts"]):
                found[e["event_id"]].append(r["ips_weight"])
        if found:
            out[e["event_id"]] = sum(found[e["event_id"]]) / len(found[e["event_id"]])
    return out


def random_case(seed: int) -> tuple[list[dict], list[dict]]:
    """Events over three days; most get one to three label rows for their slot (logged at any time, in
    the split of that time), a few rows match nothing or are unobserved."""
    rng = random.Random(seed)
    events, rows = [], []
    for n in range(30):
        request = rng.choice([None, f"r{rng.randrange(6)}"])
        hours = rng.randrange(72)
        e = event(f"e{n:02d}", rng.randrange(3), rng.randrange(3), hours, request=request)
        events.append(e)
        for _ in range(rng.randrange(4)):
            # A row without a request matches on the event's time; a slot's row may be logged later.
            logged = hours if request is None else rng.randrange(72)
            split = str(CUTOFFS.split_of(T0 + logged * HOUR))
            rows.append(label(request, e["user_idx"], e["item_idx"], logged, split, float(rng.randrange(1, 20)),
                              observed=rng.choice([0, 1, 1, 1])))
    return events, rows


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 10_000))
def test_matches_the_plain_python_rule(duckdb_engine: Engine, seed: int) -> None:
    events, rows = random_case(seed)
    got = weights(label_weights_within_splits(duckdb_engine, interactions(events), labels(rows), CUTOFFS))
    assert got == pytest.approx(reference(events, rows, CUTOFFS), rel=1e-12)
    assert got.keys() == reference(events, rows, CUTOFFS).keys()


@pytest.mark.spark
def test_spark_matches_duckdb(duckdb_engine: Engine, spark_engine: Engine) -> None:
    for seed in (1, 2, 3):
        events, rows = random_case(seed)
        duck = label_weights_within_splits(duckdb_engine, interactions(events), labels(rows), CUTOFFS)
        spark = label_weights_within_splits(spark_engine, interactions(events), labels(rows), CUTOFFS)
        assert duck.num_rows > 0
        assert spark.equals(duck), seed
    assert label_weights_within_splits(spark_engine, EVENTS, LABELS, CUTOFFS).equals(
        label_weights_within_splits(duckdb_engine, EVENTS, LABELS, CUTOFFS))
