"""The generative benchmark's results file: two partial runs writing it (a core each), and figures over seeds."""

import pytest

from benchmarks.generative import changed_over, over_seeds, seeds_table


def test_two_partial_runs_keep_each_others_figures() -> None:
    start = {"beauty_sasrec_hr10": 0.08, "beauty_hstu_hr10": 0.07, "beauty_tiger_hr10": 0.05}
    hstu = dict(start) | {"beauty_hstu_hr10": 0.09}  # each run read the file at its start
    tiger = dict(start) | {"beauty_tiger_hr10": 0.06, "beauty_tiger_detail": {"epochs": 20}}
    on_disk = changed_over(start, start, hstu)  # the HSTU run ends first
    on_disk = changed_over(on_disk, start, tiger)
    assert on_disk == {"beauty_sasrec_hr10": 0.08, "beauty_hstu_hr10": 0.09, "beauty_tiger_hr10": 0.06, "beauty_tiger_detail": {"epochs": 20}}


def test_a_run_that_changed_nothing_keeps_the_file() -> None:
    start = {"beauty_sasrec_hr10": 0.08, "hardware": {"cores": 2}}
    newer = {"beauty_sasrec_hr10": 0.08, "hardware": {"cores": 2}, "beauty_hstu_hr10": 0.1}
    assert changed_over(newer, start, dict(start)) == newer


def test_figures_over_seeds_take_the_plain_run_as_seed_one() -> None:
    out = {"beauty_sasrec_hr10": 0.08, "beauty_sasrec_ndcg10": 0.04, "beauty_sasrec_detail": {},
           "beauty_sasrec_seed2_hr10": 0.09, "beauty_sasrec_seed2_ndcg10": 0.05, "beauty_sasrec_seed2_detail": {},
           "beauty_sasrec_seed3_hr10": 0.10, "beauty_sasrec_seed3_ndcg10": 0.03, "beauty_sasrec_seed3_detail": {},
           "beauty_sasrec_sampled_hr10": 0.5, "beauty_sasrec_sampled_detail": {}}  # another run, not a seed
    summary = over_seeds(out, "beauty_sasrec")
    assert summary["seeds"] == [1, 2, 3] and "hr50" not in summary
    assert summary["hr10"] == {"values": [0.08, 0.09, 0.10], "mean": 0.09, "std": pytest.approx(0.01)}
    assert summary["ndcg10"]["mean"] == 0.04 and summary["ndcg10"]["std"] == pytest.approx(0.01)
    with_hr50 = {**out, **{f"beauty_sasrec{s}_{m}": 0.2 for s in ("", "_seed2", "_seed3") for m in ("hr50", "ndcg50")}}
    row = seeds_table({"beauty_sasrec_over_seeds": over_seeds(with_hr50, "beauty_sasrec")}, ("beauty_sasrec",)).splitlines()[-1]
    assert row == "| beauty_sasrec | 1, 2, 3 | 0.0900 ± 0.0100 | 0.0400 ± 0.0100 | 0.2000 ± 0.0000 | 0.2000 ± 0.0000 |"


def test_a_continued_run_records_the_curve_of_a_call_that_left_no_record(tmp_path) -> None:
    """A call killed before it wrote its figures leaves only its checkpoint: the next call's record starts at epoch 1."""
    from benchmarks.generative import run_one
    from tests.training.test_sasrec import cycle_data

    data = cycle_data()
    first: dict = {}  # type: ignore[type-arg]
    run_one("beauty", "sasrec", data, None, 0.5, first, "tiny_sasrec", out_dir=tmp_path)
    lost_epochs = first["tiny_sasrec_detail"]["epochs"]
    second: dict = {}  # type: ignore[type-arg]  # the first call's record is gone, as after a kill
    run_one("beauty", "sasrec", data, None, 0.5, second, "tiny_sasrec", out_dir=tmp_path)
    detail = second["tiny_sasrec_detail"]
    assert detail["resumed_from_epoch"] == lost_epochs
    assert [c["epoch"] for c in detail["curve"]] == list(range(1, detail["epochs"] + 1))
    assert detail["curve"][:lost_epochs] == first["tiny_sasrec_detail"]["curve"]
    assert detail["train_seconds_all_calls"] > detail["train_seconds"] and second["tiny_sasrec_seconds"] >= detail["train_seconds_all_calls"]
