"""Results: the markdown table and the JSON file, both written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.machine import one_line

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _num(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    return f"{v:.3g}{unit}" if v < 10 else f"{v:.1f}{unit}"


def _verdict(row: dict[str, Any]) -> str:
    """'<= 0.6: met' for a target on the ratio, '<= 500 MB: met' for one on xnet's own value."""
    target, on = row.get("target"), row.get("target_on", "ratio")
    value = row.get(on)
    if target is None or value is None:
        return "-"
    unit = "" if on == "ratio" else " " + row.get("unit", "")
    # the speedrun's target holds only at its accuracy: a fast run that misses 99 % does not meet it
    accuracy, least = row.get("xnet_accuracy"), row.get("min_accuracy")
    if least is not None and accuracy is not None:
        met = value <= target and accuracy >= least
        return f"<= {target:g}{unit} at >= {least:.0%}: {'met' if met else 'NOT met'}"
    return f"<= {target:g}{unit}: {'met' if value <= target else 'NOT met'}"


def _pool(row: dict[str, Any]) -> str:
    """The peak of xnet's GPU memory pool in MiB, '-' where none was measured (the CPU, workload 6)."""
    peak = row.get("gpu_pool_peak_bytes")
    return "-" if peak is None else f"{peak / 2**20:.0f} MiB"


def _note(row: dict[str, Any]) -> str:
    """A row's note, with the run it was kept from when an earlier run measured it."""
    origin = row.get("from_run")
    if not origin:
        return row["note"]
    at = f" at {origin['commit']}" if origin.get("commit") else ""
    return " ".join(filter(None, [row.get("note"), f"(from the run of {origin['date']}{at})"]))


def _where(results: dict[str, Any]) -> str:
    if results.get("torch_alone"):
        return ("in one run, each PyTorch epoch (the second of two) in a process of its own where xnet sets "
                "nothing (benchmarks/torch_alone.py)")
    return "within one process"


def markdown(results: dict[str, Any]) -> str:
    """The results as a markdown section: machine line, table, notes."""
    lines = [
        f"# xnet vs PyTorch, device {results['device']}",
        "",
        f"{results['date']}: {one_line(results['machine'])}",
        "",
        *([results["note"], ""] if results.get("note") else []),
        f"Data: {results.get('data', '?')}. Median of the repeats; xnet and PyTorch alternate {_where(results)}. "
        "Ratio = xnet / PyTorch (below 1: xnet is faster). Load: the 1-minute load average "
        "before and after the workload (other processes on the machine slow both sides). xnet GPU pool: the "
        "most CuPy's memory pool held during the workload (CUDA only).",
        "",
        "| # | workload | xnet | PyTorch | ratio | target | repeats | load | xnet GPU pool |",
        "|---|---|---:|---:|---:|---|---:|---|---:|",
    ]
    for r in results["workloads"]:
        unit = r.get("unit", "s")
        load = "-" if not r.get("load") else " -> ".join(f"{v:.1f}" for v in r["load"])
        lines.append(
            f"| {r['id']} | {r['name']} | {_num(r.get('xnet'), ' ' + unit)} | {_num(r.get('torch'), ' ' + unit)} "
            f"| {_num(r.get('ratio'))} | {_verdict(r)} | {r.get('repeats', '-')} | {load} | {_pool(r)} |"
        )
    notes = [f"- {r['id']}: {_note(r)}" for r in results["workloads"] if r.get("note") or r.get("from_run")]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def load(path: Path) -> dict[str, Any] | None:
    """A previous results JSON, or None."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def merge(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """`new` with the workloads of `old` that `new` did not run kept (each row keeps its date)."""
    if not old or old.get("device") != new["device"]:
        return new
    ran = {r["id"] for r in new["workloads"]}
    # a kept row names the run it came from once: a row kept twice keeps its first origin
    origin = {"date": old["date"], "commit": old.get("machine", {}).get("git_commit")}
    kept = [r if r.get("from_run") else dict(r, from_run=origin)
            for r in old.get("workloads", []) if r["id"] not in ran]
    merged = dict(new, workloads=sorted(new["workloads"] + kept, key=lambda r: r["id"]))
    merged["note"] = new.get("note") or old.get("note")
    return merged


def write(results: dict[str, Any], stem: str) -> tuple[Path, Path]:
    """RESULTS_DIR/<stem>.md and .json, atomically; returns both paths."""
    md, js = RESULTS_DIR / f"{stem}.md", RESULTS_DIR / f"{stem}.json"
    atomic_write(js, json.dumps(results, indent=2) + "\n")
    atomic_write(md, markdown(results))
    return md, js
