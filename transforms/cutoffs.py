"""The training cut-offs: one split rule for every layer (DESIGN.md section 3 rule 1).

``train_end`` and ``valid_end`` (UTC) split time into train (``ts < train_end``), valid
(``train_end <= ts < valid_end``) and test (the rest). The labels' propensities, the user profiles,
the semantic-ID codebook and the temporal split of the training sequences all use the same pair,
resolved once per run by :class:`assets.resources.CutoffsResource`; this module holds the pure
parts: the value type, timestamp parsing and the one default rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa
import pyarrow.compute as pc

DEFAULT_TRAIN_SHARE = 0.7
DEFAULT_VALID_SHARE = 0.15


class Split(StrEnum):
    """The split a row belongs to, by its timestamp and the run's cut-offs."""

    TRAIN = "train"
    VALID = "valid"
    TEST = "test"


def parse_utc(text: str) -> dt.datetime:
    """An ISO-8601 timestamp (``Z`` accepted) as a timezone-aware UTC datetime; naive means UTC.

    Raises:
        ValueError: ``text`` is not an ISO-8601 timestamp.
    """
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as err:
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}") from err
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


@dataclass(frozen=True)
class Cutoffs:
    """Split boundaries (UTC): train is ``ts < train_end``, valid ``< valid_end``, test the rest.

    Naive datetimes are taken as UTC. ``valid_end == train_end`` (an empty validation window) is allowed.
    """

    train_end: dt.datetime
    valid_end: dt.datetime

    def __post_init__(self) -> None:
        for name in ("train_end", "valid_end"):
            value = getattr(self, name)
            if value.tzinfo is None:
                object.__setattr__(self, name, value.replace(tzinfo=dt.UTC))
        if self.valid_end < self.train_end:
            raise ValueError(f"valid_end {self.valid_end} is before train_end {self.train_end}")

    @classmethod
    def parse(cls, train_end: str, valid_end: str) -> Cutoffs:
        """Cut-offs from two ISO-8601 timestamps."""
        return cls(parse_utc(train_end), parse_utc(valid_end))

    def end_of(self, split: Split | str) -> dt.datetime | None:
        """The exclusive end of the data a split may use (None for test: all data)."""
        return {Split.TRAIN: self.train_end, Split.VALID: self.valid_end, Split.TEST: None}[Split(split)]

    def split_of(self, ts: dt.datetime) -> Split:
        """The split of a timezone-aware timestamp."""
        if ts.tzinfo is None:
            raise ValueError("ts must be timezone-aware (UTC)")
        return Split.TRAIN if ts < self.train_end else Split.VALID if ts < self.valid_end else Split.TEST

    def split_sql(self, ts: str, *, epoch_ms: bool = False) -> str:
        """The split of each row as an SQL expression (portable between the engines).

        Args:
            ts: A timestamp expression, or milliseconds since the epoch when ``epoch_ms``.
            epoch_ms: Compare ``ts`` with the cut-offs as epoch milliseconds.
        """
        train_end, valid_end = (
            (str(_epoch_ms(self.train_end)), str(_epoch_ms(self.valid_end)))
            if epoch_ms
            else (ts_literal(self.train_end), ts_literal(self.valid_end))
        )
        return (
            f"CASE WHEN {ts} < {train_end} THEN '{Split.TRAIN}' "
            f"WHEN {ts} < {valid_end} THEN '{Split.VALID}' ELSE '{Split.TEST}' END"
        )

    def split_array(self, ts: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
        """The split of each value of a timestamp array, or of an int64 array of epoch milliseconds."""
        if pa.types.is_timestamp(ts.type):
            ts = pc.cast(pc.cast(ts, pa.timestamp("ms", tz="UTC")), pa.int64())
        train = pc.less(ts, _epoch_ms(self.train_end))
        valid = pc.less(ts, _epoch_ms(self.valid_end))
        return pc.if_else(train, str(Split.TRAIN), pc.if_else(valid, str(Split.VALID), str(Split.TEST)))

    def as_metadata(self) -> dict[str, str]:
        """``train_end`` and ``valid_end`` as ISO-8601 strings (for asset metadata)."""
        return {"train_end": self.train_end.isoformat(), "valid_end": self.valid_end.isoformat()}


def ts_literal(value: dt.datetime) -> str:
    """A UTC timestamp as an SQL literal both engines read the same way (microsecond precision)."""
    utc = value.astimezone(dt.UTC)
    return f"TIMESTAMP '{utc.strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def _epoch_ms(value: dt.datetime) -> int:
    # Timestamps are stored in whole milliseconds, so ``ts < value`` exactly when ``ts_ms`` is below
    # ``value`` rounded up to a whole millisecond (as split_of and the timestamp form of split_sql say).
    return -((value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // -dt.timedelta(milliseconds=1))


def default_cutoffs(
    first_day: dt.date | None,
    last_day: dt.date | None,
    train_share: float = DEFAULT_TRAIN_SHARE,
    valid_share: float = DEFAULT_VALID_SHARE,
) -> Cutoffs:
    """The default rule over every day from ``first_day`` to ``last_day`` inclusive (all with data).

    :func:`cutoffs_for_days` with the whole range; see there.

    Raises:
        ValueError: There are no days (either is None, or ``last_day`` precedes ``first_day``), or
            the shares are out of range.
    """
    if first_day is None or last_day is None:
        raise ValueError("no days with data: cannot derive default cut-offs")
    if last_day < first_day:
        raise ValueError(f"no days with data: last day {last_day} is before first day {first_day}")
    span = (last_day - first_day).days + 1
    return cutoffs_for_days([first_day + dt.timedelta(days=n) for n in range(span)], train_share, valid_share)


def cutoffs_for_days(
    days: Sequence[dt.date],
    train_share: float = DEFAULT_TRAIN_SHARE,
    valid_share: float = DEFAULT_VALID_SHARE,
) -> Cutoffs:
    """The default rule: day boundaries at ``train_share`` and ``train_share + valid_share`` of the days with data.

    Of the ``n`` distinct days in ``days`` (the days that hold data; gaps between them do not count),
    train gets the first ``round(n * train_share)`` (at least one), valid the next
    ``round(n * valid_share)`` (at least one when ``valid_share > 0`` and days remain), test the
    rest. ``train_end`` is the midnight ending the last training day and ``valid_end`` the midnight
    ending the last validation day (``train_end`` when valid has no day). A dataset whose days
    cluster at the end of a long span (a few early events, then years of data) is therefore split by
    its data, not by the calendar.

    Raises:
        ValueError: ``days`` is empty, or the shares are out of range.
    """
    ordered = sorted(set(days))
    if not ordered:
        raise ValueError("no days with data: cannot derive default cut-offs")
    if not 0 < train_share <= 1 or not 0 <= valid_share <= 1 or train_share + valid_share > 1:
        raise ValueError(
            f"need 0 < train_share <= 1, 0 <= valid_share and train_share + valid_share <= 1, "
            f"got {train_share} and {valid_share}"
        )
    n = len(ordered)
    train_days = min(n, max(1, round(n * train_share)))
    # A validation share that rounds to zero days would leave valid_end == train_end, an empty
    # validation window: valid gets at least one day whenever days remain after training.
    valid_days = min(n - train_days, max(1 if valid_share > 0 else 0, round(n * valid_share)))
    train_end = _midnight_after(ordered[train_days - 1])
    valid_end = _midnight_after(ordered[train_days + valid_days - 1]) if valid_days else train_end
    return Cutoffs(train_end, valid_end)


def _midnight_after(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
