"""The default cut-offs fall at 70 % / 85 % of the days that hold data, not of the calendar span."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa

from assets.resources import CutoffsResource
from transforms.cutoffs import Cutoffs, cutoffs_for_days, default_cutoffs
from warehouse.contracts import RAW_EVENTS
from warehouse.store import Warehouse

DAY0 = dt.date(2020, 1, 1)


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def test_gaps_between_days_with_data_do_not_count() -> None:
    # One stray day in 2000, then twenty days of data in 2020: the calendar rule would put every 2020
    # row in train; by days with data, train is the stray day and the first 14 of 2020 (15 of 21 days).
    days = [dt.date(2000, 1, 1)] + [DAY0 + dt.timedelta(days=n) for n in range(20)]
    cutoffs = cutoffs_for_days(days)
    assert cutoffs == Cutoffs(midnight(DAY0 + dt.timedelta(days=14)), midnight(DAY0 + dt.timedelta(days=17)))
    assert cutoffs != default_cutoffs(days[0], days[-1])


def test_contiguous_days_give_the_calendar_rule() -> None:
    days = [DAY0 + dt.timedelta(days=n) for n in range(10)]
    assert cutoffs_for_days(days) == default_cutoffs(days[0], days[-1])
    assert cutoffs_for_days(days[:1]) == Cutoffs(midnight(DAY0 + dt.timedelta(days=1)), midnight(DAY0 + dt.timedelta(days=1)))


def test_the_resource_counts_only_partitions_that_hold_rows(tmp_path: Path) -> None:
    store = Warehouse(tmp_path)
    row = {"event_id": "e", "user_id": "u", "event_type": "click", "item_id": "i"}
    for n in range(10):
        day = DAY0 + dt.timedelta(days=n)
        ts = dt.datetime.combine(day, dt.time(12), dt.UTC)
        store.write(RAW_EVENTS, pa.Table.from_pylist([{**row, "event_id": f"e{n}", "ts": ts}], schema=RAW_EVENTS.schema), day)
    for n in range(10, 40):  # a month of empty partitions (nightly runs on days without logs)
        store.write(RAW_EVENTS, RAW_EVENTS.schema.empty_table(), DAY0 + dt.timedelta(days=n))
    assert CutoffsResource().resolve(store) == Cutoffs(midnight(DAY0 + dt.timedelta(days=7)), midnight(DAY0 + dt.timedelta(days=9)))
