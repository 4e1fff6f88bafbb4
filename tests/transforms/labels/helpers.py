"""Tiny literal label tables for the report and plot tests."""

from __future__ import annotations

import pyarrow as pa

from warehouse import contracts as C


def position_bias(rows: list[tuple[str, str, int, float]]) -> pa.Table:
    """A ``labels/position_bias`` table from ``(split, surface, position, examination)`` rows."""
    full = [
        {"split": split, "fitted_until": None, "surface": surface, "position": position, "examination": exam,
         "impressions": 100, "clicks": 10, "click_rate": 0.1, "pooled": False, "iterations": 3, "converged": True}
        for split, surface, position, exam in rows
    ]
    return pa.Table.from_pylist(full, schema=C.LABELS_POSITION_BIAS.schema)
