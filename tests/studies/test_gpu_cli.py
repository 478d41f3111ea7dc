"""``attnsim gpu``: JSON keys, the FA3 FLOP convention, and one-line exit-2 errors on bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from attnsim.studies.cli import main
from attnsim.studies.gpu import REPORT_KEYS

ROOT = Path(__file__).resolve().parents[2]
SXM = ROOT / "specs" / "arch" / "h100-sxm.yaml"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["gpu", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_keys_and_flop_convention(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "--arch", str(SXM), "--design", "flash3", "--seq", "2048",
                          "--head-dim", "128", "--json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert tuple(report) == REPORT_KEYS
    # FA3 protocol defaults: 16384 / 2048 = 8 sequences, 2048 / 128 = 16 heads
    assert (report["batch"], report["heads"], report["causal"], report["dtype"]) == (8, 16, False, "fp16")
    assert report["flops"] == 4 * 2048 ** 2 * 128 * 16 * 8
    assert report["tflops"] == pytest.approx(report["flops"] / report["latency_s"] / 1e12)
    for key in ("util_tensor", "util_mufu", "util_fp32", "util_hbm"):
        assert 0.0 <= report[key] <= 1.0
    assert report["bound"] in ("tensor", "mufu", "fp32", "smem", "l2", "hbm", "tensor+mufu")


def test_causal_halves_the_counted_flops(capsys: pytest.CaptureFixture[str]) -> None:
    reports = []
    for extra in ((), ("--causal",)):
        code, out, _ = _run(capsys, "--design", "flash2", "--seq", "1024", "--head-dim", "64",
                            "--batch", "2", "--heads", "4", "--json", *extra)
        assert code == 0
        reports.append(json.loads(out))
    assert reports[1]["flops"] == reports[0]["flops"] / 2 == 2 * 1024 ** 2 * 64 * 4 * 2
    assert (reports[0]["batch"], reports[0]["heads"]) == (2, 4)


def test_text_output_names_the_bound(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "--design", "fusemax", "--seq", "1024", "--head-dim", "256",
                          "--arch", "h200")
    assert (code, err) == (0, "")
    assert out.startswith("gpu fusemax on h200: batch 16 x heads 8 x seq 1024 x head_dim 256")
    for key in ("latency_s", "tflops", "util_tensor", "util_mufu", "util_fp32", "util_hbm", "bound"):
        assert f"  {key} " in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--design", "flash4", "--seq", "512", "--head-dim", "64"],
     "gpu: --design: expected one of flash2, flash3, flat, fusemax, flashdecoding, leanattention, got 'flash4'"),
    (["--seq", "0", "--head-dim", "64"], "gpu: --seq: expected a positive integer, got 0"),
    (["--seq", "-5", "--head-dim", "64"], "gpu: --seq: expected a positive integer, got -5"),
    (["--seq", "1x", "--head-dim", "64"],
     "gpu: --seq: expected a positive integer (optionally with K or M), got '1x'"),
    (["--head-dim", "64"], "gpu: --seq: missing (expected a positive integer)"),
    (["--seq", "512", "--head-dim", "96"], "gpu: --head-dim: expected one of 64, 128, 256, got 96"),
    (["--seq", "512", "--head-dim", "64", "--dtype", "int8"],
     "gpu: --dtype: expected one of fp16, bf16, fp8, got 'int8'"),
    (["--seq", "512", "--head-dim", "64", "--batch", "0"], "gpu: --batch: expected a positive integer, got 0"),
    (["--seq", "512", "--head-dim", "64", "--arch", "fusemax-cloud"],
     "specs/arch/fusemax-cloud.yaml: kind: expected 'gpu' (a GPU spec starts with 'kind: gpu'), got no kind key"),
    (["--seq", "512", "--head-dim", "64", "--arch", "b200"],
     "unknown GPU spec 'b200' (known: a100-sxm-80gb, h100-pcie, h100-sxm, h200; or give a path to a .yaml file)"),
    (["--seq", "512", "--head-dim", "64", "--design", "flash2", "--no-pingpong"],
     "gpu: --no-warp-specialization/--no-pingpong/--no-intra-pipeline: only for --design flash3, got 'flash2'"),
])
def test_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str],
                                          message: str) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == ""
    assert err == f"attnsim: error: {message}\n"


def test_bad_spec_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "gpu.yaml"
    bad.write_text(SXM.read_text(encoding="utf-8").replace("mufu_ops:   {value: 16,", "mufu_ops:   {value: -16,"),
                   encoding="utf-8")
    code, _, err = _run(capsys, "--arch", str(bad), "--seq", "512", "--head-dim", "64")
    assert code == 2
    assert err == (f"attnsim: error: {bad}: per_sm_per_clock.mufu_ops.value: expected a positive integer, "
                   "got -16\n")


def test_subprocess_prints_no_traceback() -> None:
    proc = subprocess.run([sys.executable, "-m", "attnsim", "gpu", "--seq", "0", "--head-dim", "64"],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("attnsim: error: gpu: --seq:")


# ----------------------------------------------------------------------------- --cascade / --mapping

MAPPINGS = ROOT / "specs" / "mappings"


def test_design_is_a_shorthand_for_its_cascade_and_mapping(capsys: pytest.CaptureFixture[str]) -> None:
    common = ("--seq", "1024", "--head-dim", "128", "--causal", "--json")
    code, out, _ = _run(capsys, "--design", "flash3", *common)
    assert code == 0
    by_design = json.loads(out)
    code, out, _ = _run(capsys, "--cascade", "attention-1pass", "--mapping", str(MAPPINGS / "gpu-flash3.yaml"),
                        *common)
    assert code == 0
    by_pair = json.loads(out)
    assert (by_design["cascade"], by_design["mapping"]) == ("attention-1pass-causal", "gpu-flash3")
    for key in ("latency_s", "tflops", "energy_pj", "traffic_bytes", "util_tensor", "util_l2", "bound"):
        assert by_pair[key] == by_design[key], key


def test_any_cascade_file_with_a_mapping(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a user's copy of the 3-pass cascade under another name runs with the FLAT-style mapping
    cascade = tmp_path / "my-attention.yaml"
    text = (ROOT / "specs" / "cascades" / "attention-3pass-deferred.yaml").read_text(encoding="utf-8")
    cascade.write_text(text.replace("name: attention-3pass-deferred", "name: my-attention"), encoding="utf-8")
    code, out, err = _run(capsys, "--cascade", str(cascade), "--mapping", "gpu-flat", "--seq", "2048",
                          "--head-dim", "64", "--json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert (report["cascade"], report["mapping"], report["design"]) == ("my-attention", "gpu-flat", "gpu-flat")
    assert report["latency_s"] > 0


GPU_SPECS = ("a100-sxm-80gb", "h100-pcie", "h100-sxm", "h200")


@pytest.mark.parametrize("arch", GPU_SPECS)
@pytest.mark.parametrize(("alias", "mapping"), [("flash2", "gpu-fa2-style"), ("flash3", "gpu-fa3-style")])
def test_a_variant_cascade_file_with_a_designs_dataflow(capsys: pytest.CaptureFixture[str], arch: str, alias: str,
                                                        mapping: str) -> None:
    # issue #16: `--cascade FILE --mapping flash2|flash3` with the shape flags of --design, on every GPU spec;
    # FA3's dataflow needs wgmma, which the A100 lacks: a one-line error there
    shape = ("--arch", arch, "--seq", "4096", "--batch", "2", "--heads", "16", "--head-dim", "128",
             "--dtype", "bf16", "--causal", "--json")
    cascade = str(ROOT / "specs" / "cascades" / "sigmoid-attention.yaml")
    code, out, err = _run(capsys, "--cascade", cascade, "--mapping", alias, *shape)
    if alias == "flash3" and arch == "a100-sxm-80gb":
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and "needs the GPU feature 'wgmma'" in err
        return
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert (report["cascade"], report["mapping"]) == ("sigmoid-attention-causal", mapping)
    assert (report["batch"], report["heads"], report["seq"], report["head_dim"], report["dtype"],
            report["causal"]) == (2, 16, 4096, 128, "bf16", True)
    code, out, _ = _run(capsys, "--cascade", cascade, "--mapping", mapping, *shape)
    assert code == 0 and json.loads(out)["latency_s"] == report["latency_s"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--design", "flash2", "--cascade", "attention-1pass", "--seq", "512", "--head-dim", "64"],
     "gpu: --design: give either --design or --cascade and --mapping, not both"),
    (["--cascade", "attention-1pass", "--seq", "512", "--head-dim", "64"],
     "gpu: --mapping: missing (with --cascade, give both, or --design)"),
    (["--cascade", "attention-3pass", "--mapping", "gpu-flash3", "--seq", "512", "--head-dim", "64"],
     "specs/mappings/gpu-flash3.yaml: gpu.style: 'warp_specialized' makes one sweep over the K/V tiles, "
     "but cascade attention-3pass needs 3 passes over M (use style: multi_pass)"),
    (["--cascade", "cascade1", "--mapping", "gpu-flash2", "--seq", "512", "--head-dim", "64"],
     None),
])
def test_bad_cascade_mapping_pairs(capsys: pytest.CaptureFixture[str], argv: list[str], message: str | None) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1
    if message is not None:
        assert err == f"attnsim: error: {message}\n"


def test_bad_gpu_mapping_file_names_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "m.yaml"
    bad.write_text((MAPPINGS / "gpu-flash2.yaml").read_text(encoding="utf-8").replace(
        "  stages: 1 ", "  stagez: 1 "), encoding="utf-8")
    code, _, err = _run(capsys, "--cascade", "attention-1pass", "--mapping", str(bad), "--seq", "512",
                        "--head-dim", "64")
    assert code == 2
    assert err == f"attnsim: error: {bad}: gpu.stagez: unknown key 'stagez'\n"
    unknown = tmp_path / "u.yaml"
    unknown.write_text((MAPPINGS / "gpu-flash2.yaml").read_text(encoding="utf-8").replace(
        "einsums: [SPNV]", "einsums: [SPNX]"), encoding="utf-8")
    code, _, err = _run(capsys, "--cascade", "attention-1pass", "--mapping", str(unknown), "--seq", "512",
                        "--head-dim", "64")
    assert code == 2
    assert err.startswith(f"attnsim: error: {unknown}: gpu.ops.rescale: Einsum 'SPNX' is not one the cascade "
                          "computes")


def test_a_study_sweeps_cascade_and_mapping_axes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    study = tmp_path / "s.yaml"
    study.write_text("name: v\nkind: gpu\nbase: {seq: 1024, head_dim: 64, batch: 2, heads: 2}\ngrid:\n"
                     "  - {cascade: [attention-1pass, sigmoid-attention, softplus-attention], mapping: [gpu-fa2-style]}\n"
                     "  - {cascade: [attention-1pass], mapping: [gpu-flash2]}\n", encoding="utf-8")
    code = main(["sweep", str(study), "--out", str(tmp_path / "out"), "--workers", "1", "--quiet"])
    assert code == 0, capsys.readouterr().err
    db = sqlite3.connect(tmp_path / "out" / "results.sqlite")
    rows = [json.loads(r) for (r,) in db.execute("SELECT result_json FROM points ORDER BY point_index")]
    db.close()
    assert [(r["cascade"], r["mapping"]) for r in rows] == [
        ("attention-1pass", "gpu-fa2-style"), ("sigmoid-attention", "gpu-fa2-style"),
        ("softplus-attention", "gpu-fa2-style"), ("attention-1pass", "gpu-flash2")]
    assert all(r["latency_s"] > 0 and r["traffic_bytes"] >= 4 * 2 * 2 * 1024 * 64 * 2 for r in rows)


def test_a_study_refuses_a_bad_mapping_axis(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "s.yaml"
    study.write_text("name: v\nkind: gpu\nbase: {seq: 1024, head_dim: 64, cascade: attention-1pass}\n"
                     "grid: {mapping: [gpu-flash9]}\n", encoding="utf-8")
    code = main(["sweep", str(study), "--out", str(tmp_path / "out"), "--workers", "1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "grid.mapping" in err and "gpu-flash9" in err


def test_tiles_that_overflow_smem_name_the_tensors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 256 rows x 256 x 2 B of Q = 131072 B, one 128-key K and V tile 65536 B each: 262144 > 227 KB
    big = tmp_path / "big.yaml"
    big.write_text((MAPPINGS / "gpu-flash2.yaml").read_text(encoding="utf-8").replace(
        "{when: {head_dim: 256}, block_m: 64, block_n: 64, consumers: 4}",
        "{when: {head_dim: 256}, block_m: 256, block_n: 128, consumers: 4}"), encoding="utf-8")
    code, out, err = _run(capsys, "--cascade", "attention-1pass", "--mapping", str(big), "--seq", "1024",
                          "--head-dim", "256")
    assert code == 2 and out == ""
    assert err == (f"attnsim: error: {big}: gpu.tiles: the CTA's SMEM tiles need 262144 bytes (Q 131072 + 1 x "
                   "(K 65536 + V 65536)) for block_m 256, block_n 128, head_dim 256; h100-sxm allows 232448 per CTA\n")
