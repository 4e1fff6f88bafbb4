"""The generative benchmark's results file when two partial runs write it (a core each)."""

from benchmarks.generative import changed_over


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
