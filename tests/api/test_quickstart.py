"""examples/quickstart.py executes and gives one DataFrame row per simulated point."""
from __future__ import annotations

import ast
import runpy
from pathlib import Path

import matplotlib
import pytest

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"


def _code_lines(path: Path) -> int:
    """Lines of code (not comments, not blank) of a percent-format script."""
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.lstrip().startswith("#"))


def test_quickstart_is_under_ten_lines_of_code() -> None:
    ast.parse(QUICKSTART.read_text(encoding="utf-8"))
    assert _code_lines(QUICKSTART) < 10


def test_quickstart_runs_and_returns_one_row_per_point() -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.close("all")
    namespace = runpy.run_path(str(QUICKSTART), run_name="__main__")
    frame = namespace["frame"]
    assert list(frame["design"]) == ["fusemax", "flat"]               # one row per point
    assert list(frame["arch"]) == ["fusemax-cloud", "fusemax-cloud"]  # both on the modified chip
    assert list(frame["design_default_arch"]) == ["fusemax-cloud", "flat-cloud"]
    assert (frame["seq"] == 64 * 1024).all() and (frame["model"] == "bert-base").all()
    # the 2 MiB buffer override reached both runs
    assert all(run.arch.global_buffer.capacity_bytes == 2 * 2**20 for run in namespace["runs"])
    # latency = cycles / clock (fusemax-cloud runs at 940 MHz, paper §VI-A)
    assert list(frame["latency_s"]) == pytest.approx(list(frame["cycles"] / 940e6), rel=1e-12)
    # FuseMax's attention is faster than FLAT's on the same hardware (the paper's headline direction)
    assert frame.loc[0, "latency_s"] < frame.loc[1, "latency_s"]
    assert plt.get_fignums(), "the quickstart draws its plot"
    plt.close("all")
