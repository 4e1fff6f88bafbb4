"""The one default cut-off rule and the cut-off value type."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from transforms import labels as L
from transforms.cutoffs import Cutoffs, Split, default_cutoffs, parse_utc
from transforms.engine import Engine
from warehouse.contracts import TS

UTC = dt.UTC
DAY0 = dt.date(2026, 1, 1)


def midnight(day: int) -> dt.datetime:
    return dt.datetime(2026, 1, day, tzinfo=UTC)


def test_default_rule_puts_day_boundaries_at_70_and_85_percent_of_the_days() -> None:
    # 20 days: 14 train, 3 valid, 3 test.
    assert default_cutoffs(DAY0, DAY0 + dt.timedelta(days=19)) == Cutoffs(midnight(15), midnight(18))
    # 10 days: round(7.0) = 7 train, round(1.5) = 2 valid.
    assert default_cutoffs(DAY0, DAY0 + dt.timedelta(days=9)) == Cutoffs(midnight(8), midnight(10))
    # Other shares.
    assert default_cutoffs(DAY0, DAY0 + dt.timedelta(days=9), 0.5, 0.5) == Cutoffs(midnight(6), midnight(11))


@pytest.mark.parametrize("span", range(1, 9))
def test_default_rule_keeps_train_non_empty_and_valid_end_within_the_data(span: int) -> None:
    last = DAY0 + dt.timedelta(days=span - 1)
    for train_share, valid_share in ((0.7, 0.15), (0.01, 0.0), (0.5, 0.5), (1.0, 0.0), (0.9, 0.1)):
        cutoffs = default_cutoffs(DAY0, last, train_share, valid_share)
        assert cutoffs.train_end > midnight(1)
        assert cutoffs.train_end <= cutoffs.valid_end <= dt.datetime.combine(last, dt.time(), UTC) + dt.timedelta(days=1)
        assert cutoffs.train_end.time() == dt.time() and cutoffs.valid_end.time() == dt.time()


def test_short_spans_still_get_a_validation_day() -> None:
    # 3 days: round(2.1) = 2 train; round(0.45) = 0 would leave no validation window, so it gets 1.
    assert default_cutoffs(DAY0, DAY0 + dt.timedelta(days=2)) == Cutoffs(midnight(3), midnight(4))
    # 1 day: everything trains; there is no day left to validate on.
    assert default_cutoffs(DAY0, DAY0) == Cutoffs(midnight(2), midnight(2))


def test_default_rule_refuses_no_days_and_bad_shares() -> None:
    with pytest.raises(ValueError, match="no days with data"):
        default_cutoffs(None, None)
    with pytest.raises(ValueError, match="no days with data"):
        default_cutoffs(DAY0, DAY0 - dt.timedelta(days=1))
    for shares in ((0.0, 0.1), (0.9, 0.2), (0.5, -0.1)):
        with pytest.raises(ValueError, match="train_share"):
            default_cutoffs(DAY0, DAY0 + dt.timedelta(days=3), *shares)


def test_cutoffs_parse_order_and_splits() -> None:
    cutoffs = Cutoffs.parse("2026-01-03T00:00:00Z", "2026-01-04T01:00:00+01:00")
    assert cutoffs == Cutoffs(midnight(3), midnight(4))
    assert cutoffs.end_of(Split.TRAIN) == midnight(3) and cutoffs.end_of("valid") == midnight(4) and cutoffs.end_of(Split.TEST) is None
    assert [cutoffs.split_of(midnight(d)) for d in (2, 3, 4)] == [Split.TRAIN, Split.VALID, Split.TEST]
    assert cutoffs.as_metadata() == {"train_end": "2026-01-03T00:00:00+00:00", "valid_end": "2026-01-04T00:00:00+00:00"}
    assert Cutoffs(dt.datetime(2026, 1, 3), dt.datetime(2026, 1, 4)) == cutoffs  # naive = UTC
    with pytest.raises(ValueError, match="before train_end"):
        Cutoffs(midnight(4), midnight(3))
    assert parse_utc("2026-01-03") == midnight(3)
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_utc("tomorrow")
    assert L.Cutoffs is Cutoffs and L.Split is Split  # the labels module uses the same type


# Literal cut-offs with timestamps a millisecond before, exactly at and a millisecond after each one:
# a split, equal cut-offs (an empty validation window) and cut-offs inside a millisecond.
SUB_MS = dt.timedelta(microseconds=500)
CUTOFF_CASES = [
    Cutoffs(midnight(3), midnight(4)),
    Cutoffs(midnight(3), midnight(3)),
    Cutoffs(midnight(3) + SUB_MS, midnight(4) + SUB_MS),
]


def around(cutoffs: Cutoffs) -> list[dt.datetime]:
    """Millisecond timestamps (as stored) a millisecond before, at and after each cut-off."""
    floors = [c - dt.timedelta(microseconds=c.microsecond % 1000) for c in (cutoffs.train_end, cutoffs.valid_end)]
    return sorted({midnight(1), midnight(20)} | {f + dt.timedelta(milliseconds=ms) for f in floors for ms in (-1, 0, 1)})


def splits_in_sql(engine: Engine, cutoffs: Cutoffs, stamps: list[dt.datetime]) -> tuple[list[str], list[str]]:
    """``split_sql`` on the engine, on timestamps and on their epoch milliseconds."""
    engine.register_arrow("cutoff_cases", pa.table({"n": range(len(stamps)), "ts": pa.array(stamps, TS)}))
    ms = engine.dialect.epoch_ms("ts")
    out = engine.query(
        f"SELECT n, {cutoffs.split_sql('ts')} AS by_ts, {cutoffs.split_sql(ms, epoch_ms=True)} AS by_ms FROM cutoff_cases ORDER BY n"
    )
    return out["by_ts"].to_pylist(), out["by_ms"].to_pylist()


@pytest.mark.parametrize("cutoffs", CUTOFF_CASES)
def test_split_sql_and_split_array_agree_with_split_of(duckdb_engine: Engine, cutoffs: Cutoffs) -> None:
    stamps = around(cutoffs)
    expected = [str(cutoffs.split_of(ts)) for ts in stamps]
    assert set(expected) == {str(s) for s in Split if s is not Split.VALID or cutoffs.valid_end > cutoffs.train_end}
    by_ts, by_ms = splits_in_sql(duckdb_engine, cutoffs, stamps)
    assert by_ts == expected and by_ms == expected
    ts = pa.array(stamps, TS)
    assert cutoffs.split_array(ts).to_pylist() == expected
    assert cutoffs.split_array(pc.cast(ts, pa.int64())).to_pylist() == expected  # epoch milliseconds


@pytest.mark.spark
def test_split_sql_on_spark_agrees_with_split_of(spark_engine: Engine) -> None:
    for cutoffs in CUTOFF_CASES:
        stamps = around(cutoffs)
        expected = [str(cutoffs.split_of(ts)) for ts in stamps]
        assert splits_in_sql(spark_engine, cutoffs, stamps) == (expected, expected)
