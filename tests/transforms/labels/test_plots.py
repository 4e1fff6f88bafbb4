"""The examination-curve figure: a PNG with one panel per surface, from the full-data fit only."""

from __future__ import annotations

import struct

import pyarrow as pa

from transforms import labels as L

from .helpers import position_bias

RANDOMIZED = pa.table({"surface": ["home", "home"], "position": [0, 1], "click_rate": [0.2, 0.1]})


def _size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk comes first
    return width, height


def test_one_panel_per_surface_of_the_full_data_fit() -> None:
    table = position_bias([
        ("test", "home", 0, 1.0), ("test", "home", 1, 0.6),
        ("test", "related", 0, 1.0), ("test", "related", 1, 0.4),
        ("train", "other", 0, 1.0),  # train-scope fits are not drawn: no third panel
    ])
    png = L.examination_curve_png(table, {"home": [1.0, 0.5]}, RANDOMIZED, "uniform_random")
    assert png is not None
    assert _size(png) == (720, 280)  # 2 panels of 4.5 x 3.5 inches at 80 dpi


def test_the_truth_and_the_randomized_click_rates_are_drawn() -> None:
    table = position_bias([("test", "home", 0, 1.0), ("test", "home", 1, 0.6)])
    empty = RANDOMIZED.slice(0, 0)
    bare = L.examination_curve_png(table, {}, empty, "uniform_random")
    with_truth = L.examination_curve_png(table, {"home": [1.0, 0.5]}, empty, "uniform_random")
    with_random = L.examination_curve_png(table, {}, RANDOMIZED, "uniform_random")
    assert bare is not None and _size(bare) == (360, 280)
    assert len({bare, with_truth, with_random}) == 3


def test_no_figure_without_a_full_data_fit() -> None:
    table = position_bias([("train", "home", 0, 1.0)])
    assert L.examination_curve_png(table, {}, RANDOMIZED, "uniform_random") is None
