"""FINN.no slates (Eide et al. 2021, "recsys_slates_dataset"): ``data.npz`` (+ optional ``itemattr.npz``).

``data.npz`` holds, per user u and interaction step t (at most 20 steps)::

    userId[u]            the user
    slate[u, t, :]       item indices shown (25 slots; 0 = padding)     (also accepted: ``slates``)
    click[u, t]          the clicked item; 1 = "no click", 0 = padding    (also accepted: ``clicks``)
    click_idx[u, t]      the slot of the click in slate[u, t]
    slate_lengths[u, t]  number of items shown (optional; else the non-zero slots)
    interaction_type[u, t]  1 = search, 2 = recommendation, 0 = padding (optional)

Each non-padding step → one slate (``surface`` = the interaction type), one impression per shown item
(position = slot), and, when something was clicked, a ``click`` event on the clicked item at its slot.
``itemattr.npz`` (``category[item]``) → items with that category. FINN has no timestamps: step t of
every user gets the synthetic time :data:`FINN_EPOCH` + t seconds, which keeps each user's order.
There are no source lines: ``line_no`` is the flattened step number u * steps + t + 1.

Arrays are streamed out of the zip a block of users at a time, so memory stays bounded.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from transforms.connectors.base import Connector, ConnectorError, Record, dumps, iso_ts

FINN_EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
PAD_ITEM = 0
NO_CLICK_ITEM = 1
INTERACTION_TYPES = {1: "search", 2: "recommendation"}
BLOCK_USERS = 4096
ALIASES = {"slate": ("slate", "slates"), "click": ("click", "clicks"), "click_idx": ("click_idx",), "userId": ("userId", "user_id")}


class FinnConnector(Connector):
    format = "finn"
    tables = ("slates", "impressions", "events", "items")

    def records(self) -> Iterator[Record]:
        data = self.path / "data.npz" if self.path.is_dir() else self.path
        if not data.exists():
            raise ConnectorError(f"finn: no data.npz in {self.path}")
        src = self.source_name(data)
        with zipfile.ZipFile(data) as archive:
            members = {name.removesuffix(".npy"): name for name in archive.namelist()}
            chosen = {}
            for key, names in ALIASES.items():
                found = next((members[n] for n in names if n in members), None)
                if found is None:
                    raise ConnectorError(f"finn: {data} lacks array {key!r} (has {sorted(members)})")
                chosen[key] = found
            for optional in ("slate_lengths", "interaction_type"):
                if optional in members:
                    chosen[optional] = members[optional]
            yield from self._steps(archive, chosen, src)
        attrs = data.parent / "itemattr.npz"
        if attrs.exists():
            yield from self._items(attrs)

    def _steps(self, archive: zipfile.ZipFile, members: dict[str, str], src: str) -> Iterator[Record]:
        readers = {key: _NpyRows(archive.open(name)) for key, name in members.items()}
        users, steps = readers["click"].shape[:2]
        for key, reader in readers.items():
            if reader.shape[0] != users or (key != "userId" and reader.shape[1] != steps):
                raise ConnectorError(f"finn: array {key!r} has shape {reader.shape}, expected ({users}, {steps}, ...)")
        for start in range(0, users, BLOCK_USERS):
            count = min(BLOCK_USERS, users - start)
            block = {key: reader.read(count) for key, reader in readers.items()}
            for offset in range(count):
                u = start + offset
                user = str(int(block["userId"][offset]))
                for t in range(steps):
                    yield from self._step(block, offset, u, t, steps, user, src)
        for reader in readers.values():
            reader.close()

    def _step(self, block: dict[str, np.ndarray], offset: int, u: int, t: int, steps: int, user: str, src: str) -> Iterator[Record]:
        kind = int(block["interaction_type"][offset, t]) if "interaction_type" in block else None
        slate = block["slate"][offset, t]
        length = int(block["slate_lengths"][offset, t]) if "slate_lengths" in block else int(np.count_nonzero(slate))
        click = int(block["click"][offset, t])
        if kind == 0 or (click == PAD_ITEM and length == 0):
            return  # padding: the user had fewer than `steps` interactions
        no = u * steps + t + 1
        ts = iso_ts(FINN_EPOCH + dt.timedelta(seconds=t))
        request = f"{self.name}:{user}:{t}"
        items = [str(int(i)) for i in slate[:length]]
        slate_row = {"request_id": request, "user_id": user, "ts": ts, "item_ids": items}
        if kind is not None:
            slate_row["surface"] = INTERACTION_TYPES.get(kind, str(kind))
        yield Record("slates", src, no, dumps(slate_row))
        for position, item in enumerate(items):
            yield Record("impressions", src, no, dumps({"request_id": request, "user_id": user, "item_id": item, "position": position, "ts": ts}))
        if click not in (PAD_ITEM, NO_CLICK_ITEM):
            event = {"event_id": f"{request}:click", "user_id": user, "ts": ts, "event_type": "click", "item_id": str(click),
                     "request_id": request}
            yield Record("events", src, no, dumps(event))

    def _items(self, path: Path) -> Iterator[Record]:
        src = self.source_name(path)
        with np.load(path) as attrs:
            if "category" not in attrs:
                raise ConnectorError(f"finn: {path} lacks the 'category' array")
            categories = attrs["category"]
        for index, category in enumerate(categories):
            if index in (PAD_ITEM, NO_CLICK_ITEM):
                continue
            yield Record("items", src, index + 1, dumps({"item_id": str(index), "categories": [str(int(category))]}))


class _NpyRows:
    """Reads a ``.npy`` stream (from inside a zip) row block by row block, never whole."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        version = np.lib.format.read_magic(handle)
        reader: Any = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = reader(handle)
        if fortran and len(shape) > 1:
            raise ConnectorError("finn: Fortran-ordered arrays cannot be streamed; save data.npz in C order")
        self.shape: tuple[int, ...] = shape
        self.dtype = dtype
        self._row_items = int(np.prod(shape[1:])) if len(shape) > 1 else 1

    def read(self, rows: int) -> np.ndarray:
        raw = self._handle.read(rows * self._row_items * self.dtype.itemsize)
        return np.frombuffer(raw, dtype=self.dtype).reshape((rows, *self.shape[1:]))

    def close(self) -> None:
        self._handle.close()
