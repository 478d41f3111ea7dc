"""``attnsim search`` (issue 18): the front as a table and as JSON, ``--out`` round-trips through
``attnsim simulate --mapping``, bad input is one line with exit code 2, a study can use ``mapping: search``."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from attnsim.studies.cli import main as cli_main

POINT = ["--cascade", "sigmoid-attention", "--arch", "fusemax-cloud", "--model", "bert-base", "--seq", "1K"]


def test_json_front_and_out_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "best.yaml"
    assert cli_main(["search", *POINT, "--out", str(out), "--json", "--quiet"]) == 0
    front = json.loads(capsys.readouterr().out)
    assert front and all({"latency_s", "energy_pj", "onchip_bytes", "mapping"} <= set(p) for p in front)
    # no point of the front dominates another
    for a in front:
        for b in front:
            keys = ("latency_s", "energy_pj", "onchip_bytes")
            assert not (all(a[k] <= b[k] for k in keys) and any(a[k] < b[k] for k in keys))
    assert yaml.safe_load(out.read_text())["target"] == "spatial"
    assert cli_main(["simulate", "--mapping", str(out), "--model", "bert-base", "--seq", "1K", "--json"]) == 0
    simulated = json.loads(capsys.readouterr().out)
    best = [p for p in front if p["best"]]
    assert len(best) == 1
    assert (simulated["latency_s"], simulated["energy_pj"]) == (best[0]["latency_s"], best[0]["energy_pj"])


def test_table_names_the_front_and_the_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["search", *POINT, "--quiet", "--objective", "energy"]) == 0
    text = capsys.readouterr().out
    assert "latency_s" in text and "energy_pj" in text and "onchip_bytes" in text
    assert "candidates" in text and "pruned footprint" in text and "best (energy)" in text


def test_gemm_search_prints_the_mapping(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["search", "--gemm", "4096", "1024", "1024", "--json"]) == 0
    front = json.loads(capsys.readouterr().out)
    assert all("dataflow" in p["mapping"] and "loop_order" in p["mapping"] for p in front)


@pytest.mark.parametrize("args,message", [
    (["--objective", "speed"], "--objective: expected one of latency, energy, edp"),
    (["--budget-s", "-1"], "--budget-s: expected a positive number"),
    (["--cascade", "attention-2pass"], "makes 2 passes"),   # its pass rank is split: no default groups
    (["--seq", "0"], "--seq"),
])
def test_bad_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                      message: str) -> None:
    base = dict(zip(POINT[::2], POINT[1::2]))
    for key, value in zip(args[::2], args[1::2]):
        base[key] = value
    out = tmp_path / "never.yaml"
    argv = ["search", *[x for kv in base.items() for x in kv], "--quiet", "--out", str(out)]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_a_study_can_use_mapping_search(tmp_path: Path) -> None:
    from attnsim.mappers.cascade_mapper import load_cascade_arg
    from attnsim.mappers.mapping_spec import mapping_from_data
    from attnsim.studies.simulate import simulate
    from attnsim.studies.store import ResultStore
    from attnsim.studies.sweep import run_sweep

    study = tmp_path / "s.yaml"
    study.write_text(yaml.safe_dump({"name": "searched", "kind": "attention", "base": {
        "cascade": "sigmoid-attention", "mapping": "search", "model": "bert-base", "end_to_end": False},
        "grid": {"seq": [1024]}}))
    summary = run_sweep(study, tmp_path / "out", workers=1, quiet=True)
    assert summary.ok == 1, summary.failed
    with ResultStore.in_directory(tmp_path / "out") as store:
        result = store.records()[0].result
    searched = result["search"]["mapping"]
    again = simulate(None, "bert-base", 1024, cascade="sigmoid-attention",
                     mapping=mapping_from_data(searched, "<searched>"))
    assert again["latency_s"] == result["latency_s"] and load_cascade_arg("sigmoid-attention").name == result["cascade"]


def test_local_workers_give_the_same_front(capsys: pytest.CaptureFixture[str]) -> None:
    small = ["search", "--cascade", "sigmoid-attention", "--model", "bert-base", "--seq", "512", "--json", "--quiet"]
    assert cli_main(small) == 0
    here = capsys.readouterr().out
    assert cli_main([*small, "--workers", "2"]) == 0
    assert capsys.readouterr().out == here


def test_flats_cascade_is_searched_on_the_groups_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """attention-3pass: the fused group's choices searched (base: FLAT's mapping, seed: its tabled choice);
    the best point, written out, simulates to its numbers and is no worse than the tabled choice."""
    point = ["--cascade", "attention-3pass", "--arch", "flat-cloud", "--model", "bert-base", "--seq", "1K"]
    out = tmp_path / "best.yaml"
    assert cli_main(["search", *point, "--out", str(out), "--json", "--quiet"]) == 0
    front = json.loads(capsys.readouterr().out)
    best = [p for p in front if p["best"]]
    assert len(best) == 1 and "groups" in best[0]["mapping"]
    assert cli_main(["simulate", "--design", "flat", "--model", "bert-base", "--seq", "1K", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert best[0]["latency_s"] <= table["latency_s"] and best[0]["energy_pj"] <= table["energy_pj"] * (1 + 1e-12)
    assert cli_main(["simulate", "--cascade", "attention-3pass", "--mapping", str(out), "--arch", "flat-cloud",
                     "--model", "bert-base", "--seq", "1K", "--json"]) == 0
    simulated = json.loads(capsys.readouterr().out)
    assert (simulated["latency_s"], simulated["energy_pj"]) == (best[0]["latency_s"], best[0]["energy_pj"])


def test_a_study_can_search_a_multi_pass_cascade(tmp_path: Path) -> None:
    from attnsim.studies.store import ResultStore
    from attnsim.studies.sweep import run_sweep

    study = tmp_path / "s.yaml"
    study.write_text(yaml.safe_dump({"name": "searched-flat", "kind": "attention", "base": {
        "cascade": "attention-3pass", "mapping": "search:flat", "arch": "flat-cloud", "model": "bert-base",
        "end_to_end": False}, "grid": {"seq": [1024]}}))
    summary = run_sweep(study, tmp_path / "out", workers=1, quiet=True)
    assert summary.ok == 1, summary.failed
    with ResultStore.in_directory(tmp_path / "out") as store:
        result = store.records()[0].result
    assert "groups" in result["search"]["mapping"] and result["latency_s"] > 0
