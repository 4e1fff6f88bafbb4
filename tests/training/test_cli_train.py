"""``recforge train``: settings from --set, a one-line summary, metrics rows in the warehouse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recforge.cli import main
from warehouse import contracts as C
from warehouse.store import Warehouse

from .test_train import tiny_ratings


def test_train_relmf_from_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    train, test = tiny_ratings()
    folder = tmp_path / "coat"
    folder.mkdir()
    np.savetxt(folder / "train.ascii", train, fmt="%d")
    np.savetxt(folder / "test.ascii", test, fmt="%d")
    monkeypatch.setenv("RECFORGE_HOME", str(tmp_path / "home"))
    code = main(["train", "relmf", "--no-progress", "--metrics", "--set", f"data.path={folder}", "--set", "mf.dim=8", "--set", "mf.lr=0.05",
                 "--set", "run.max_epochs=3", "--set", "run.batch_size=128", "--set", f"run.out_dir={tmp_path / 'ckpt'}"])
    assert code == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("relmf: 3 epochs") and "ndcg@5" in line
    rows = Warehouse(tmp_path / "home").read(C.MODELS_METRICS).to_pylist()
    assert {(r["model"], r["metric"], r["k"]) for r in rows} >= {("relmf", "ndcg", 5), ("relmf", "map", 5)}
    assert all(r["version"] != "untracked" and r["protocol"] == "coat_lee2021" for r in rows)
