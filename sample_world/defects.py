"""Malformed and duplicate lines."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pyarrow as pa

from sample_world.config import WorldConfig
from sample_world.text import _Fields, _join, _LineBuilder


class _Defect(StrEnum):
    TRUNCATED = "truncated"
    MISSING_KEY = "missing_key"
    BAD_TIMESTAMP = "bad_timestamp"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    NEGATIVE_PRICE = "negative_price"
    RATING_OUT_OF_RANGE = "rating_out_of_range"


@dataclass
class _LogCounts:
    log: str
    records: int = 0
    bad: int = 0
    duplicates: int = 0


@dataclass(frozen=True)
class _DefectSpec:
    defects: tuple[_Defect, ...]
    missing_keys: tuple[str, ...]  # candidates for MISSING_KEY
    bad_timestamps: tuple[str, ...] = ()  # rendered values for BAD_TIMESTAMP
    csv: bool = False  # CSV rows lose trailing fields and have empty keys instead


def _with_defects(
    fields: _Fields, build: _LineBuilder, spec: _DefectSpec, config: WorldConfig,
    rng: np.random.Generator, counts: _LogCounts,
) -> pa.Array:
    """Lines of ``fields`` with malformed copies and exact duplicates inserted right after their source."""
    lines = build(fields)
    n = len(lines)
    counts.records += n
    n_bad = int(rng.binomial(n, config.bad_share)) if n else 0
    n_dup = int(rng.binomial(n, config.dup_share)) if n else 0
    if n_bad == 0 and n_dup == 0:
        return lines
    dup_source = np.sort(rng.choice(n, size=n_dup, replace=False))
    bad_source = np.sort(rng.choice(n, size=n_bad, replace=False))
    kinds = rng.integers(0, len(spec.defects), size=n_bad)
    bad_lines = [_malformed(fields, bad_source[kinds == k], spec.defects[k], build, spec, rng)
                 for k in range(len(spec.defects))]
    bad_order = np.concatenate([bad_source[kinds == k] for k in range(len(spec.defects))])
    all_lines = pa.concat_arrays([lines, lines.take(pa.array(dup_source)), *bad_lines])
    # Stable sort on the source row puts each copy right after its original.
    order = np.argsort(np.concatenate([np.arange(n), dup_source, bad_order]), kind="stable")
    counts.bad += n_bad
    counts.duplicates += n_dup
    return all_lines.take(pa.array(order))


def _malformed(
    fields: _Fields, rows: np.ndarray, defect: _Defect, build: _LineBuilder, spec: _DefectSpec,
    rng: np.random.Generator,
) -> pa.Array:
    subset = {k: v.take(pa.array(rows, type=pa.int64())) for k, v in fields.items()}
    n = len(rows)
    if n == 0:
        return pa.array([], pa.string())
    if defect is _Defect.TRUNCATED and spec.csv:
        # Cut at a field boundary: a cut inside a quoted field would swallow the next rows.
        keep = int(rng.integers(1, len(subset)))
        return build(dict(list(subset.items())[:keep]))
    if defect is _Defect.TRUNCATED:
        # A strict prefix of a JSON object is never valid JSON.
        full = build(subset).to_pylist()
        cut = rng.uniform(0.2, 0.9, size=n)
        return pa.array([s[: max(1, int(len(s) * c))].rstrip("\n") + "\n" for s, c in zip(full, cut, strict=True)])
    if defect is _Defect.MISSING_KEY:
        drop = spec.missing_keys[int(rng.integers(len(spec.missing_keys)))]
        if spec.csv:
            subset[drop] = pa.array([""] * n)
            return build(subset)
        return build({k: v for k, v in subset.items() if k != drop})
    if defect is _Defect.BAD_TIMESTAMP:
        subset["ts"] = pa.array(rng.choice(np.array(spec.bad_timestamps, dtype=object), size=n), pa.string())
    elif defect is _Defect.UNKNOWN_EVENT_TYPE:
        subset["event_type"] = pa.array(['"teleport"'] * n)
    elif defect is _Defect.NEGATIVE_PRICE:
        subset["price"] = _join("-", subset["price"])
    elif defect is _Defect.RATING_OUT_OF_RANGE:
        subset["rating"] = pa.array(rng.choice(np.array(["0", "6", "9", "-1"], dtype=object), size=n), pa.string())
    return build(subset)


def _bad_timestamps(config: WorldConfig) -> tuple[str, ...]:
    """Unparseable timestamps and ones years away from the world's period."""
    far_year = config.start_date.year - 20
    return ('"not a timestamp"', '"2026-02-30T25:61:00.000Z"', f'"{far_year}-06-15T12:00:00.000Z"')


def _log_defects(config: WorldConfig) -> Mapping[str, _DefectSpec]:
    bad_ts = _bad_timestamps(config)
    common = (_Defect.TRUNCATED, _Defect.MISSING_KEY, _Defect.BAD_TIMESTAMP)
    return {
        "impressions": _DefectSpec(common, ("user_id", "item_id"), bad_ts),
        "events": _DefectSpec((*common, _Defect.UNKNOWN_EVENT_TYPE), ("user_id", "item_id"), bad_ts),
        "reviews": _DefectSpec((*common, _Defect.RATING_OUT_OF_RANGE), ("user_id", "item_id"), bad_ts),
        "items": _DefectSpec((_Defect.TRUNCATED, _Defect.MISSING_KEY, _Defect.NEGATIVE_PRICE), ("item_id",)),
    }
