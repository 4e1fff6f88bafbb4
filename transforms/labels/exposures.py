"""The label rows' inputs: raw relations, exposures with their engagement, ratings and graded signals.

SQL building blocks, one definition rendered per dialect, that the propensity estimators and the label
assembly share.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from transforms.cutoffs import Cutoffs, Split, ts_literal
from transforms.engine import Dialect, Engine
from transforms.labels.config import Engagement, GradeRule, LabelConfig
from warehouse import contracts
from warehouse.contracts import EventType

DEFAULT_SURFACE = "default"  # impressions whose slate is unknown (orphans) share one examination curve
_SLOTS_RELATION = "labels_slot_numbers"
SOURCE_RELATIONS: Mapping[str, contracts.TableContract] = {
    "slates": contracts.RAW_SLATES,
    "impressions": contracts.RAW_IMPRESSIONS,
    "events": contracts.RAW_EVENTS,
    "reviews": contracts.RAW_REVIEWS,
    "items": contracts.RAW_ITEMS,
}


# --- inputs -----------------------------------------------------------------------------------------


def register_sources(engine: Engine, files: Mapping[str, Sequence[Path]]) -> None:
    """Register the raw tables as the relations this module reads; a missing table becomes empty.

    Args:
        engine: The engine to register in.
        files: Parquet files per relation name (``slates``, ``impressions``, ``events``, ``reviews``).
    """
    for name, contract in SOURCE_RELATIONS.items():
        paths = list(files.get(name, ()))
        if paths:
            engine.register_parquet(name, paths)
        else:
            engine.register_arrow(name, contract.schema.empty_table())


def has_exposure_logs(engine: Engine) -> bool:
    """True when there is at least one impression, over all data (a split decides with :func:`split_modes`)."""
    return int(engine.query("SELECT COUNT(*) AS n FROM impressions").column(0)[0].as_py()) > 0


@dataclass(frozen=True)
class SplitMode:
    """How one split's labels are estimated, decided from the data before its end only.

    Attributes:
        exposure: Impressions exist before the split's end: rows are impressions (else observed positives).
        engagement: What makes an exposure's ``Y`` 1: clicks linked to requests before the split's end, or ratings.
    """

    exposure: bool
    engagement: Engagement


def split_modes(engine: Engine, cutoffs: Cutoffs) -> dict[Split, SplitMode]:
    """The estimator mode of every split, each from the impressions and linked clicks before its end.

    One impression after ``valid_end`` makes the test split an exposure split; training, which cannot
    see it, stays on ratings.
    """
    split = cutoffs.split_sql("ts")
    counts = engine.query(f"""
        SELECT 'impressions' AS kind, {split} AS split, COUNT(*) AS n FROM impressions GROUP BY {split}
        UNION ALL
        SELECT 'linked_clicks' AS kind, {split} AS split, COUNT(*) AS n FROM events
        WHERE event_type = '{EventType.CLICK}' AND request_id IS NOT NULL GROUP BY {split}""").to_pylist()
    seen = {(r["kind"], r["split"]): int(r["n"]) for r in counts}
    modes: dict[Split, SplitMode] = {}
    impressions = clicks = 0
    for s in (Split.TRAIN, Split.VALID, Split.TEST):  # cumulative: a split sees every earlier split's data
        impressions += seen.get(("impressions", str(s)), 0)
        clicks += seen.get(("linked_clicks", str(s)), 0)
        modes[s] = SplitMode(impressions > 0, Engagement.CLICKS if clicks > 0 else Engagement.RATINGS)
    return modes


def register_slate_slots(engine: Engine) -> None:
    """Register ``labels_slot_numbers`` (0 .. longest slate - 1), with which a slate's list is unrolled.

    Portable SQL has no "index of a value in a list", so the slate is unrolled into one row per slot
    (``slot < len(item_ids)``) and joined to its impressions by item: see :func:`_exposures_sql`.
    """
    d = engine.dialect
    longest = engine.query(f"SELECT MAX({d.list_len('item_ids')}) AS n FROM slates").column(0)[0].as_py()
    engine.register_arrow(_SLOTS_RELATION, pa.table({"k": pa.array(range(int(longest or 0)), pa.int32())}))


# --- SQL building blocks (one definition, rendered per dialect) ---------------------------------------


def _before(col: str, end: dt.datetime | None) -> str:
    return "TRUE" if end is None else f"{col} < {ts_literal(end)}"


def _within_split(col: str, split_col: str, cutoffs: Cutoffs) -> str:
    """True when ``col`` lies before the end of the split named by ``split_col`` (test: always).

    A time is before train's end when its own split is train, and before valid's end when its own
    split is train or valid: in both cases its split is ``split_col`` or train.
    """
    return f"({split_col} = '{Split.TEST}' OR {cutoffs.split_sql(col)} IN ('{Split.TRAIN}', {split_col}))"


def _exposures_sql(d: Dialect, config: LabelConfig, engagement: Engagement) -> str:
    """Impressions with their slate's surface and policy, the logged propensity of the item, and
    ``click_ts``, the time of their engagement (NULL when none): the first click linked to them by
    ``request_id`` or, for logs that carry ratings instead of clicks (Coat's exposures), the first
    rating at or above ``positive_rating`` by the same user on the same item within
    ``attribution_window`` after the impression.

    The logged propensity is the impression's own, else the slate's propensity of the item's slot: the
    index of the item in the slate's ``item_ids`` (never the impression's position, which may hold
    another item). When that slot is not the impression's position (or the slate does not list the item)
    the row has no logged propensity and ``slot_mismatch`` is true. ``orphan``: the impression's request
    has no slate; orphans share the surface ``default``. Needs :func:`register_slate_slots`.
    """
    if engagement is Engagement.CLICKS:
        engaged = f"""
        LEFT JOIN (
            SELECT request_id, item_id, MIN(ts) AS click_ts FROM events
            WHERE event_type = '{EventType.CLICK}' AND request_id IS NOT NULL AND item_id IS NOT NULL
            GROUP BY request_id, item_id
        ) c ON c.request_id = i.request_id AND c.item_id = i.item_id"""
    else:
        window_ms = int(config.attribution_window.total_seconds() * 1000)
        engaged = f"""
        LEFT JOIN (
            SELECT user_id, item_id, MIN(ts) AS click_ts FROM ({_ratings_sql()}) r
            WHERE rating >= {float(config.positive_rating)!r} GROUP BY user_id, item_id
        ) c ON c.user_id = i.user_id AND c.item_id = i.item_id
            AND {d.epoch_ms('c.click_ts')} >= {d.epoch_ms('i.ts')}
            AND {d.epoch_ms('c.click_ts')} <= {d.epoch_ms('i.ts')} + {window_ms}"""
    slots = f"""
        SELECT request_id, item_id, MIN(slot) AS slot FROM (
            SELECT s.request_id, x.k AS slot, {d.list_element('s.item_ids', 'x.k')} AS item_id
            FROM slates s JOIN {_SLOTS_RELATION} x ON x.k < {d.list_len('s.item_ids')}
        ) unrolled GROUP BY request_id, item_id"""
    matched = "sl.slot IS NOT NULL AND sl.slot = i.position"
    return f"""
        SELECT i.request_id, i.user_id, i.item_id, i.position, i.ts,
               COALESCE(s.surface, '{DEFAULT_SURFACE}') AS surface, s.policy,
               COALESCE(i.propensity, CASE WHEN {matched} THEN {d.list_element('s.propensities', 'sl.slot')} END)
                   AS policy_propensity,
               (i.propensity IS NULL AND s.propensities IS NOT NULL AND NOT ({matched})) AS slot_mismatch,
               (s.request_id IS NULL) AS orphan,
               c.click_ts
        FROM impressions i
        LEFT JOIN slates s ON s.request_id = i.request_id
        LEFT JOIN ({slots}) sl ON sl.request_id = i.request_id AND sl.item_id = i.item_id{engaged}"""


def engagement_of(engine: Engine) -> Engagement:
    """Clicks when any click links to a request, ratings otherwise, over all data (per split: :func:`split_modes`)."""
    linked = engine.query(
        f"SELECT COUNT(*) AS n FROM events WHERE event_type = '{EventType.CLICK}' AND request_id IS NOT NULL"
    )
    return Engagement.CLICKS if int(linked.column(0)[0].as_py()) > 0 else Engagement.RATINGS


def _ratings_sql() -> str:
    """Every observed rating once: reviews and ``rating`` events, one row per (user, item, time).

    Connectors store a rating both as a ``rating`` event and as a review (MovieLens, Amazon); the two
    are one observation, so one exposure and at most one positive (the higher value if they differ).
    """
    return f"""
        SELECT user_id, item_id, ts, MAX(rating) AS rating FROM (
            SELECT user_id, item_id, ts, rating FROM reviews WHERE rating IS NOT NULL
            UNION ALL
            SELECT user_id, item_id, ts, value AS rating FROM events
            WHERE event_type = '{EventType.RATING}' AND item_id IS NOT NULL AND value IS NOT NULL
        ) both_tables GROUP BY user_id, item_id, ts"""


def _grade_case(grades: Sequence[GradeRule], signal: str, value: str) -> str:
    if not grades:
        return "0"
    whens = []
    for rule in sorted(grades, key=lambda r: -r.grade):  # the first match is the best grade
        cond = f"{signal} = '{rule.signal}'"
        if rule.min_value is not None:
            cond += f" AND {value} >= {float(rule.min_value)!r}"
        whens.append(f"WHEN {cond} THEN {int(rule.grade)}")
    return f"CASE {' '.join(whens)} ELSE 0 END"


def _signals_sql(grades: Sequence[GradeRule]) -> str:
    grade = _grade_case(grades, "signal", "value")
    return f"""
        SELECT user_id, item_id, ts, {grade} AS grade FROM (
            SELECT user_id, item_id, ts, event_type AS signal, value FROM events WHERE item_id IS NOT NULL
            UNION ALL
            SELECT user_id, item_id, ts, '{EventType.RATING}' AS signal, rating AS value FROM reviews
        ) s"""
