"""specs/studies/llm-inference.yaml: it loads, and a tiny version of it (same kinds, plots and grid shapes,
short lengths) sweeps and plots end to end through the CLI."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml

from attnsim.studies.cli import main
from attnsim.studies.study import load_study

ROOT = Path(__file__).resolve().parents[2]
STUDY = ROOT / "specs" / "studies" / "llm-inference.yaml"


def test_the_shipped_study_loads() -> None:
    study = load_study(STUDY)
    assert study.spec.kind == "llm"


def test_tiny_llm_study_sweeps_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = yaml.safe_load(STUDY.read_text())
    grids = []
    for grid in data["grid"]:                       # same axes, one short length and at most two values
        small = {key: values[:2] for key, values in grid.items()}
        small["kv_len"] = [1024] if grid["phase"] == ["decode"] else [512]
        grids.append(small)
    data.update({"name": "llm-tiny", "grid": grids})
    path = tmp_path / "llm-tiny.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    out_dir = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out_dir), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert ", 0 failed" in out
    assert main(["plot", str(out_dir)]) == 0
    capsys.readouterr()
    for entry in data["plots"]:
        if entry.get("type") != "style":
            assert (out_dir / "figs" / f"{entry['name']}.png").stat().st_size > 0
    db = sqlite3.connect(out_dir / "results.sqlite")
    statuses = {row[0] for row in db.execute("SELECT status FROM points")}
    db.close()
    assert statuses == {"ok"}


@pytest.mark.parametrize("change, key", [({"design": "fusemax-cloud"}, "design"),
                                         ({"model": "no-such-model"}, "model"),
                                         ({"kv_len": 0}, "kv_len"), ({"phase": "training"}, "phase")])
def test_bad_llm_parameters_are_one_line_errors_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               change: dict, key: str) -> None:
    base = {"design": "flashdecoding", "model": "llama-3.1-8b", "kv_len": 1024, "phase": "decode", **change}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "kind": "llm", "base": base}))
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err, err
