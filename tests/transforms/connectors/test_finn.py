from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.transforms.connectors.conftest import by_table, objects
from transforms.connectors import ConnectorError, connector_for, finn


def _write_finn(folder: Path, compressed: bool) -> None:
    """Two users, three steps, slates of up to 4 slots (0 = padding, 1 = "no click")."""
    slate = np.zeros((2, 3, 4), dtype=np.int64)
    slate[0, 0] = [5, 6, 7, 0]   # user 10, step 0: three items shown, clicked 6 (slot 1)
    slate[0, 1] = [8, 9, 0, 0]   # user 10, step 1: nothing clicked
    slate[1, 0] = [5, 9, 11, 12]  # user 20, step 0: clicked 12 (slot 3); steps 1-2 are padding
    click = np.array([[6, 1, 0], [12, 0, 0]], dtype=np.int64)
    click_idx = np.array([[1, 0, 0], [3, 0, 0]], dtype=np.int64)
    interaction_type = np.array([[2, 1, 0], [2, 0, 0]], dtype=np.int64)
    save = np.savez_compressed if compressed else np.savez
    save(folder / "data.npz", userId=np.array([10, 20]), slate=slate, click=click, click_idx=click_idx,
         interaction_type=interaction_type)
    np.savez(folder / "itemattr.npz", category=np.array([0, 0, 0, 0, 0, 3, 3, 4, 4, 5, 0, 6, 6]))


@pytest.mark.parametrize("compressed", [False, True])
def test_steps_become_slates_impressions_and_clicks(tmp_path: Path, compressed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_finn(tmp_path, compressed)
    monkeypatch.setattr(finn, "BLOCK_USERS", 1)  # stream one user at a time: blocks must join up
    tables = by_table(connector_for("finn", tmp_path, name="finn"))
    slates = objects(tables["slates"])
    assert [(s["user_id"], s["item_ids"], s["surface"]) for s in slates] == [
        ("10", ["5", "6", "7"], "recommendation"),
        ("10", ["8", "9"], "search"),
        ("20", ["5", "9", "11", "12"], "recommendation"),
    ]
    assert [s["ts"] for s in slates] == ["2020-01-01T00:00:00.000Z", "2020-01-01T00:00:01.000Z", "2020-01-01T00:00:00.000Z"]
    assert len(tables["impressions"]) == 9
    clicks = objects(tables["events"])
    assert [(c["user_id"], c["item_id"], c["request_id"]) for c in clicks] == [("10", "6", "finn:10:0"), ("20", "12", "finn:20:0")]
    # line_no is the flattened (user, step) index: user 1 step 0 -> 1 * 3 + 0 + 1.
    assert [r.line_no for r in tables["slates"]] == [1, 2, 4]
    items = objects(tables["items"])
    assert items[0] == {"item_id": "2", "categories": ["0"]} and len(items) == 11


def test_missing_array_is_named(tmp_path: Path) -> None:
    np.savez(tmp_path / "data.npz", userId=np.array([1]), click=np.zeros((1, 2), dtype=np.int64))
    with pytest.raises(ConnectorError, match="lacks array 'slate'"):
        list(connector_for("finn", tmp_path).records())
