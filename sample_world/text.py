"""Vectorized text building.

Every JSON value is rendered as its JSON text (strings quoted, null as ``null``) into Arrow string arrays,
and lines are joined element-wise; no per-row Python.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sample_world.config import DAY_S


def _join(*parts: pa.Array | str) -> pa.Array:
    """Element-wise concatenation of string arrays and literal strings."""
    return pc.binary_join_element_wise(*parts, "")


def _quoted(strings: pa.Array) -> pa.Array:
    escaped = pc.replace_substring(pc.replace_substring(strings, "\\", "\\\\"), '"', '\\"')
    return _join('"', escaped, '"')


def _csv_quoted(strings: pa.Array) -> pa.Array:
    return _join('"', pc.replace_substring(strings, '"', '""'), '"')


def _lookup(names: Sequence[str], index: np.ndarray) -> pa.Array:
    """``names[index]`` as a string array."""
    return pa.array(names).take(pa.array(index))


def _int_text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values, type=pa.int64()), pa.string())


def _padded_ids(prefix: str, n: int, min_width: int = 7) -> pa.Array:
    width = max(min_width, len(str(max(n - 1, 0))))
    return _join(prefix, pc.utf8_lpad(_int_text(np.arange(n)), width, "0"))


def _seq_json(prefix: str, seq: np.ndarray, width: int = 8) -> pa.Array:
    """Quoted ids ``"<prefix><seq zero-padded>"``; ``null`` where seq < 0."""
    text = _join('"', prefix, pc.utf8_lpad(_int_text(np.maximum(seq, 0)), width, "0"), '"')
    return _null_where(seq < 0, text)


def _null_where(mask: np.ndarray, text: pa.Array) -> pa.Array:
    if not mask.any():
        return text
    return pc.if_else(pa.array(mask), pa.scalar("null"), text)


def _fixed_text(values: np.ndarray, decimals: int) -> pa.Array:
    """Render non-negative integers scaled by 10**decimals as fixed-point text (1234, 2 -> ``12.34``)."""
    scale = 10**decimals
    whole = _int_text(values // scale)
    frac = pc.utf8_lpad(_int_text(values % scale), decimals, "0")
    return _join(whole, ".", frac)


@functools.cache
def _clock_table() -> tuple[pa.Array, pa.Array]:
    """``HH:MM:SS.`` for every second of a day and ``mmmZ"`` for every millisecond."""
    seconds = np.arange(DAY_S)
    hh, mm, ss = (pc.utf8_lpad(_int_text(v), 2, "0") for v in (seconds // 3600, seconds // 60 % 60, seconds % 60))
    clock = _join(hh, ":", mm, ":", ss, ".")
    millis = _join(pc.utf8_lpad(_int_text(np.arange(1000)), 3, "0"), 'Z"')
    return clock, millis


def _ts_json(ts_ms: np.ndarray, day_start_ms: int, date_text: str) -> pa.Array:
    """Quoted ISO-8601 UTC timestamps with milliseconds, for timestamps inside one day."""
    clock, millis = _clock_table()
    in_day = ts_ms - day_start_ms
    return _join(f'"{date_text}T', clock.take(pa.array(in_day // 1000)), millis.take(pa.array(in_day % 1000)))


def _iso_ms(ts_ms: np.ndarray) -> pa.Array:
    """Unquoted ISO-8601 UTC timestamps with milliseconds, for any timestamps (small arrays)."""
    text = np.datetime_as_string(ts_ms.astype("datetime64[ms]"), unit="ms")
    return _join(pa.array(text.astype(object)), "Z")


_Fields = dict[str, pa.Array]  # field name -> rendered value text, in line order


_LineBuilder = Callable[[_Fields], pa.Array]  # _json_lines or _csv_lines


def _json_lines(fields: _Fields) -> pa.Array:
    """``{"k1": v1, "k2": v2}\\n`` per row, from already rendered JSON value texts."""
    parts: list[pa.Array | str] = []
    for i, (key, text) in enumerate(fields.items()):
        parts += [("{" if i == 0 else ", ") + f'"{key}": ', text]
    parts.append("}\n")
    return _join(*parts)


def _csv_lines(fields: _Fields) -> pa.Array:
    """CSV rows from already rendered CSV field texts, in ``fields`` order."""
    parts: list[pa.Array | str] = []
    for i, text in enumerate(fields.values()):
        parts += [","] if i else []
        parts.append(text)
    parts.append("\n")
    return _join(*parts)


def _write_lines(fh: IO[bytes], lines: pa.Array) -> None:
    """Write a string array's bytes in one go (its rows already end in a newline)."""
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    if len(lines) == 0:
        return
    _, offsets_buf, data_buf = lines.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)
    begin, end = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    fh.write(memoryview(data_buf)[begin:end])
