"""``attnsim simulate --cascade --mapping`` and ``attnsim map``: the design shorthand equals its pair, and a
printed mapping, saved and passed back, gives the same result (issue #14, items 4-5)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from attnsim.studies.cli import main as cli_main

RESULT_KEYS = ("latency_s", "cycles", "energy_pj", "traffic_bytes", "util_2d", "util_1d", "per_einsum",
               "energy_breakdown_pj")


def _json(capsys, args: list[str]) -> dict:  # type: ignore[no-untyped-def]
    assert cli_main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_design_is_a_shorthand_for_its_cascade_and_mapping(capsys) -> None:  # type: ignore[no-untyped-def]
    by_design = _json(capsys, ["simulate", "--design", "fusemax", "--model", "bert-base", "--seq", "1M"])
    by_pair = _json(capsys, ["simulate", "--cascade", "attention-1pass", "--mapping", "fusemax",
                             "--model", "bert-base", "--seq", "1M"])
    assert by_design == by_pair
    assert (by_pair["cascade"], by_pair["mapping"]) == ("attention-1pass", "fusemax")


@pytest.mark.parametrize("args", [
    ["--cascade", "attention-1pass", "--mapping", "fusemax", "--model", "bert-base", "--seq", "4K"],
    ["--cascade", "attention-1pass", "--mapping", "fusemax-cascade", "--model", "xlm", "--seq", "16K"],
    ["--cascade", "attention-1pass", "--arch", "fusemax-cloud", "--model", "t5-small", "--seq", "4K"],
])
def test_map_output_round_trips(tmp_path: Path, capsys, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert cli_main(["map", *args]) == 0
    text = capsys.readouterr().out
    assert "# fusion boundaries: none" in text and "# tile (one m1 iteration on the arrays)" in text
    saved = tmp_path / "saved.yaml"
    saved.write_text(text)
    data = yaml.safe_load(text)
    assert set(data["binding"]) <= {"pe2d", "pe1d"} and "placement" in data
    assert all(isinstance(loop["factor"], int) for loop in data["loops"])
    point = args[args.index("--model"):]
    original = ["simulate", "--cascade", "attention-1pass", *point]
    if "--mapping" in args:
        original += ["--mapping", args[args.index("--mapping") + 1]]
    else:
        # the default mapping itself: printed without sizes, it must equal the printed resolved one
        assert cli_main(["map", "--cascade", "attention-1pass", "--arch", "fusemax-cloud"]) == 0
        symbolic = tmp_path / "symbolic.yaml"
        symbolic.write_text(capsys.readouterr().out)
        original += ["--mapping", str(symbolic)]
    expected = _json(capsys, original)
    got = _json(capsys, ["simulate", "--mapping", str(saved), "--cascade", "attention-1pass", *point])
    for key in RESULT_KEYS:
        assert got[key] == expected[key], key


@pytest.mark.parametrize("point", [[], ["--model", "xlm", "--seq", "5000"], ["--model", "bert-base", "--seq", "64K"]])
def test_map_of_a_multi_pass_cascade_round_trips(tmp_path: Path, capsys, point: list[str]) -> None:  # type: ignore[no-untyped-def]
    """attention-3pass: the fusion-group mapping (FLAT's, by default) with the pass analysis's boundaries;
    saved and passed back it gives --design flat's result (at the printed point when resolved)."""
    assert cli_main(["map", "--cascade", "attention-3pass", "--arch", "flat-cloud", *point]) == 0
    text = capsys.readouterr().out
    assert "makes" not in text and "after pass 1: SN (pass 2)" in text and "after pass 2: A (pass 3)" in text
    assert "# group fl fuses passes [1, 2, 3]" in text
    saved = tmp_path / "saved.yaml"
    saved.write_text(text)
    data = yaml.safe_load(text)
    if point:
        assert all(isinstance(g["block_factor"], int) and "alternatives" not in g for g in data["groups"])
    at = point or ["--model", "t5-small", "--seq", "3000"]
    expected = _json(capsys, ["simulate", "--design", "flat", *at])
    got = _json(capsys, ["simulate", "--cascade", "attention-3pass", "--mapping", str(saved), *at])
    for key in RESULT_KEYS:
        assert got[key] == expected[key], key


def test_map_refuses_a_multi_pass_cascade_without_a_group_mapping(capsys) -> None:  # type: ignore[no-untyped-def]
    # attention-2pass splits its pass rank into m1 x m0: no group holds one whole fibre by default
    assert cli_main(["map", "--cascade", "attention-2pass"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "makes 2 passes over M" in err
    assert "after pass 1: C (pass 2)" in err and "reads GM" in err and "write a mapping with groups" in err


@pytest.mark.parametrize("point", [[], ["--model", "bert-base", "--seq", "4K"], ["--model", "xlm", "--seq", "1M"]])
def test_map_of_the_deferred_cascade_derives_a_group_mapping(tmp_path: Path, capsys, point: list[str]) -> None:  # type: ignore[no-untyped-def]
    """attention-3pass-deferred (2 passes): FLAT's row-block fusion derived by analysis; saved and passed
    back it simulates, to the same result as the resolved choice, and no faster than its MACs allow."""
    assert cli_main(["map", "--cascade", "attention-3pass-deferred", "--arch", "flat-cloud", *point]) == 0
    text = capsys.readouterr().out
    assert "# group fused fuses passes [1, 2]" in text
    data = yaml.safe_load(text)
    assert data["binding"] == {"pe2d": ["QK", "SNV"], "pe1d": ["GM", "SN", "SD", "AV"]}
    saved = tmp_path / "saved.yaml"
    saved.write_text(text)
    at = point or ["--model", "bert-base", "--seq", "4K"]
    got = _json(capsys, ["simulate", "--cascade", "attention-3pass-deferred", "--mapping", str(saved),
                         "--arch", "flat-cloud", *at])
    assert cli_main(["map", "--cascade", "attention-3pass-deferred", "--arch", "flat-cloud", *at]) == 0
    again = tmp_path / "resolved.yaml"
    again.write_text(capsys.readouterr().out)
    resolved = _json(capsys, ["simulate", "--cascade", "attention-3pass-deferred", "--mapping", str(again),
                              "--arch", "flat-cloud", *at])
    for key in RESULT_KEYS:
        assert got[key] == resolved[key], key
    model, seq = at[1], {"4K": 4096, "1M": 1 << 20}[at[3]]
    e = f = 128 if model == "xlm" else 64
    heads = 64 * (16 if model == "xlm" else 12)        # batch 64 x heads (FuseMax fact sheet §4.5 workloads)
    macs = heads * seq * seq * (e + f)                 # QK and SNV: M x P x (E + F) MACs per head
    from attnsim.archsim.spec import load_arch

    clock_hz = load_arch("flat-cloud").clock_hz       # 256 x 256 2D PEs
    assert got["latency_s"] >= macs / (256 * 256) / clock_hz * (1 - 1e-9)   # float division order


def test_a_study_sweeps_cascade_and_mapping_axes(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from attnsim.studies.simulate import simulate

    study = tmp_path / "axes.yaml"
    study.write_text("name: axes\nkind: attention\ngrid:\n"
                     "  - {mapping: [fusemax, fusemax-arch], cascade: [attention-1pass], seq: [1024],"
                     " model: [bert-base], end_to_end: [false]}\n")
    out = tmp_path / "out"
    assert cli_main(["sweep", str(study), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    capsys.readouterr()
    for mapping in ("fusemax", "fusemax-arch"):
        expected = simulate(None, "bert-base", 1024, mapping=mapping)["latency_s"]
        capsys.readouterr()
        assert cli_main(["results", str(out), "--csv"]) == 0
        table = capsys.readouterr().out
        assert f"{mapping},attention-1pass,1024" in table and repr(expected) in table


def test_a_point_gives_a_design_or_a_mapping(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    study = tmp_path / "both.yaml"
    study.write_text("name: both\nkind: attention\ngrid:\n"
                     "  - {design: [fusemax], mapping: [fusemax], seq: [1024], model: [bert-base]}\n")
    assert cli_main(["sweep", str(study), "--out", str(tmp_path / "o"), "--workers", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "design" in err and "not both" in err


def test_map_of_a_new_cascade_under_another_cascades_mapping_round_trips(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    point = ["--model", "bert-base", "--seq", "4K"]
    assert cli_main(["map", "--cascade", "sigmoid-attention", "--mapping", "fusemax", *point]) == 0
    saved = tmp_path / "sigmoid.yaml"
    saved.write_text(capsys.readouterr().out)
    loops = yaml.safe_load(saved.read_text())["loops"]
    assert [(loop["rank"], loop["factor"]) for loop in loops] == [("p", 1), ("m", 16), ("p", 16), ("m", 256),
                                                                 ("p", 256)]   # 4096 = 16 x 256 keys and queries
    expected = _json(capsys, ["simulate", "--cascade", "sigmoid-attention", "--mapping", "fusemax", *point])
    got = _json(capsys, ["simulate", "--mapping", str(saved), *point])
    for key in RESULT_KEYS:
        assert got[key] == expected[key], key
