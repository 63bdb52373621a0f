"""benchmarks/report.py: rows kept from earlier runs name their origin once; the header says where PyTorch ran."""

import pytest

from benchmarks import report
from benchmarks.run import parse_args, selected


def _run(date: str, commit: str, rows: dict[int, float]) -> dict:
    return {
        "device": "cpu",
        "date": date,
        "machine": {"git_commit": commit},
        "workloads": [{"id": i, "name": f"w{i}", "xnet": v, "note": "x" if i == 1 else None} for i, v in rows.items()],
    }


def test_merge_keeps_unrun_rows_with_their_first_origin():
    first = _run("d1", "c1", {1: 1.0, 2: 2.0})
    second = report.merge(first, _run("d2", "c2", {2: 3.0}))
    third = report.merge(second, _run("d3", "c3", {2: 4.0}))
    rows = {r["id"]: r for r in third["workloads"]}
    assert rows[2]["xnet"] == 4.0 and "from_run" not in rows[2]
    assert rows[1]["xnet"] == 1.0 and rows[1]["from_run"] == {"date": "d1", "commit": "c1"}
    md = report.markdown(dict(third, machine={"cpu": "c", "cores": 2, "python": "3", "numpy": "2",
                                              "blas": "b", "torch": None}))
    assert "- 1: x (from the run of d1 at c1)" in md
    assert md.count("from the run of") == 1


def test_merge_ignores_another_device():
    cuda = dict(_run("d1", "c1", {1: 1.0}), device="cuda")
    assert report.merge(cuda, _run("d2", "c2", {2: 2.0}))["workloads"][0]["id"] == 2


def test_header_says_where_pytorch_ran():
    machine = {"cpu": "c", "cores": 2, "python": "3", "numpy": "2", "blas": "b", "torch": None}
    same = report.markdown(dict(_run("d1", "c1", {1: 1.0}), machine=machine))
    alone = report.markdown(dict(_run("d1", "c1", {1: 1.0}), machine=machine, torch_alone=True))
    assert "alternate within one process" in same and "process of its own" not in same
    assert "each PyTorch epoch (the second of two) in a process of its own" in alone


def test_torch_alone_takes_only_the_epoch_workloads():
    assert selected(parse_args(["--torch-alone"])) == [1, 2, 3, 4]
    assert selected(parse_args(["--torch-alone", "--only", "2,4"])) == [2, 4]
    with pytest.raises(SystemExit, match="times workloads 1 to 4"):
        selected(parse_args(["--torch-alone", "--only", "4,5"]))
