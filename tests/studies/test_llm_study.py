"""specs/studies/llm-inference.yaml: it loads, and a tiny version of it (same kinds, plots and grid shapes,
short lengths) sweeps and plots end to end through the CLI."""
from __future__ import annotations

import json
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


SPATIAL_STUDY = ROOT / "specs" / "studies" / "llm-inference-spatial.yaml"


def test_tiny_spatial_llm_study_sweeps_plots_and_respects_the_dram_floor(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    # the spatial side (kind attention with shape parameters), one short length per grid
    data = yaml.safe_load(SPATIAL_STUDY.read_text())
    grids = [{**grid, "seq": [1024]} for grid in data["grid"]]
    data.update({"name": "llm-spatial-tiny", "grid": grids})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    out_dir = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out_dir), "--workers", "1"]) == 0
    assert ", 0 failed" in capsys.readouterr().out
    assert main(["plot", str(out_dir)]) == 0
    capsys.readouterr()
    db = sqlite3.connect(out_dir / "results.sqlite")
    rows = [{"status": status, "params": json.loads(params), "result": json.loads(result)}
            for status, params, result in db.execute("SELECT status, params_json, result_json FROM points")]
    db.close()
    assert {row["status"] for row in rows} == {"ok"}
    # decode at batch 8 over 1024 keys of Llama 3.1 8B (8 K/V heads of 128, fp16 on fusemax-cloud): one
    # layer's K and V are read at least once, so no mapping beats their bytes over the DRAM bandwidth
    workload = yaml.safe_load((ROOT / "specs" / "workloads" / "llama-3.1-8b.yaml").read_text())
    arch = yaml.safe_load((ROOT / "specs" / "arch" / "fusemax-cloud.yaml").read_text())
    kv_bytes = 8 * workload["kv_heads"] * 1024 * (workload["head_dim_e"] + workload["head_dim_f"]) * 2
    floor_s = kv_bytes / float(arch["dram"]["bandwidth_bytes_per_s"])
    decode = [row for row in rows if row["params"]["phase"] == "decode" and not row["params"]["end_to_end"]
              and row["params"]["model"] == "llama-3.1-8b"]
    assert len(decode) == 3
    for row in decode:
        assert row["result"]["latency_s"] >= floor_s


@pytest.mark.parametrize("change, key", [({"phase": "training"}, "phase"), ({"batch": 0}, "batch"),
                                         ({"kv_heads": -1}, "kv_heads"), ({"causal": "yes"}, "causal")])
def test_bad_attention_shape_parameters_are_one_line_errors_naming_the_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict, key: str) -> None:
    base = {"design": "fusemax", "model": "llama-3.1-8b", "seq": 1024, **change}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "kind": "attention", "base": base}))
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err, err
