"""What each raw table holds and how it is read: field kinds, the table specs, the staging settings.

:mod:`transforms.ingest.staging` renders these into the one staging query per table.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from warehouse import contracts
from warehouse.contracts import EventType, TableContract

ITEMLESS_EVENT_TYPES = (EventType.SEARCH.value,)


class FieldKind(StrEnum):
    ID = "id"  # a non-blank string, or an integer taken as its decimal text; NFC-normalised
    TEXT = "text"
    DOUBLE = "double"
    INT = "int"
    TS = "ts"
    TEXT_LIST = "text_list"
    DOUBLE_LIST = "double_list"
    JSON = "json"  # kept as JSON text (free-form attributes)


class SourceKind(StrEnum):
    LINES = "lines"
    COLUMNS = "columns"


@dataclass(frozen=True)
class StagingRules:
    """Validation settings shared by every raw table."""

    late_tolerance: dt.timedelta = dt.timedelta(days=1)
    rating_min: float = 0.5
    rating_max: float = 5.0
    event_types: tuple[str, ...] = tuple(e.value for e in EventType)


@dataclass(frozen=True)
class TableSpec:
    """How one raw table is read from its source and what makes a row bad."""

    contract: TableContract
    fields: tuple[tuple[str, FieldKind], ...]
    required: tuple[str, ...]
    ts_field: str | None = "ts"
    non_negative: tuple[str, ...] = ()
    extra_rules: tuple[str, ...] = field(default=())  # names of rules handled in _range_rules


SPECS: dict[str, TableSpec] = {
    "slates": TableSpec(
        contracts.RAW_SLATES,
        (
            ("request_id", FieldKind.ID),
            ("user_id", FieldKind.ID),
            ("ts", FieldKind.TS),
            ("surface", FieldKind.TEXT),
            ("item_ids", FieldKind.TEXT_LIST),
            ("policy", FieldKind.TEXT),
            ("propensities", FieldKind.DOUBLE_LIST),
        ),
        required=("request_id", "user_id", "ts", "item_ids"),
        extra_rules=("propensities",),
    ),
    "impressions": TableSpec(
        contracts.RAW_IMPRESSIONS,
        (
            ("request_id", FieldKind.ID),
            ("user_id", FieldKind.ID),
            ("item_id", FieldKind.ID),
            ("position", FieldKind.INT),
            ("ts", FieldKind.TS),
            ("propensity", FieldKind.DOUBLE),
        ),
        required=("request_id", "user_id", "item_id", "position", "ts"),
        non_negative=("position",),
        extra_rules=("propensity",),
    ),
    "events": TableSpec(
        contracts.RAW_EVENTS,
        (
            ("event_id", FieldKind.ID),
            ("user_id", FieldKind.ID),
            ("ts", FieldKind.TS),
            ("event_type", FieldKind.TEXT),
            ("item_id", FieldKind.ID),
            ("request_id", FieldKind.ID),
            ("value", FieldKind.DOUBLE),
            ("session_id", FieldKind.ID),
        ),
        required=("event_id", "user_id", "ts", "event_type"),
        extra_rules=("event_type",),
    ),
    "reviews": TableSpec(
        contracts.RAW_REVIEWS,
        (
            ("review_id", FieldKind.ID),
            ("user_id", FieldKind.ID),
            ("item_id", FieldKind.ID),
            ("ts", FieldKind.TS),
            ("rating", FieldKind.DOUBLE),
            ("title", FieldKind.TEXT),
            ("text", FieldKind.TEXT),
            ("helpful_votes", FieldKind.INT),
        ),
        required=("review_id", "user_id", "item_id", "ts"),
        non_negative=("helpful_votes",),
        extra_rules=("rating",),
    ),
    "items": TableSpec(
        contracts.RAW_ITEMS,
        (
            ("item_id", FieldKind.ID),
            ("title", FieldKind.TEXT),
            ("description", FieldKind.TEXT),
            ("categories", FieldKind.TEXT_LIST),
            ("brand", FieldKind.TEXT),
            ("price", FieldKind.DOUBLE),
            ("attributes", FieldKind.JSON),
            ("available_from", FieldKind.TS),
        ),
        required=("item_id",),
        ts_field=None,
        non_negative=("price",),
    ),
    "users": TableSpec(
        contracts.RAW_USERS,
        (("user_id", FieldKind.ID), ("attributes", FieldKind.JSON)),
        required=("user_id",),
        ts_field=None,
    ),
}
