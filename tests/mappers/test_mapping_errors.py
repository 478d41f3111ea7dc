"""Bad mappings: one line, exit 2, naming the mapping file and the key (issue #14, item 6).

Each case edits a copy of specs/mappings/fusemax.yaml in one place; the expected numbers in the messages
are hand counts (bytes = elements x 2-byte words on fusemax-cloud).
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from attnsim.mappers.mapping_spec import MAPPINGS_DIR
from attnsim.studies.cli import main as cli_main


def _mapping(tmp_path: Path, edit) -> str:  # type: ignore[no-untyped-def]
    data = yaml.safe_load((MAPPINGS_DIR / "fusemax.yaml").read_text())
    edit(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def _error(capsys, args: list[str]) -> str:  # type: ignore[no-untyped-def]
    code = cli_main(["simulate", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def _set_factor(index: int, factor: int):  # type: ignore[no-untyped-def]
    def edit(data) -> None:  # type: ignore[no-untyped-def]
        data["loops"][index]["factor"] = factor
    return edit


def test_a_block_too_big_for_the_buffer_names_the_tensor_bytes_and_capacity(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    # 64 query blocks of 256 rows at E = F = 64: Q alone is 64 * 256 * 64 * 2 = 2 MiB, the block
    # 64 * 256 * (64 + 1 + 1 + 64) * 2 + 256 * 128 * 2 = 4325376 bytes > the 4 MiB buffer set below.
    path = _mapping(tmp_path, _set_factor(2, 64))
    err = _error(capsys, ["--mapping", path, "--model", "bert-base", "--seq", "16K",
                          "--set", "global_buffer.capacity_bytes=4194304"])
    assert f"{path}: loops[2].factor" in err
    assert "4325376 bytes" in err and "global_buffer.capacity_bytes = 4194304" in err
    assert "Q 2097152 B" in err or "largest: Q, 2097152 bytes" in err


def test_an_einsum_bound_to_a_unit_without_its_operator(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    def edit(data) -> None:  # type: ignore[no-untyped-def]
        data["binding"]["pe1d"].remove("AV")
        data["binding"]["pe2d"].append("AV")
    path = _mapping(tmp_path, edit)
    err = _error(capsys, ["--mapping", path, "--model", "bert-base", "--seq", "4K"])
    assert f"{path}: binding.pe2d[5]" in err and "no 'div' operation (needed by Einsum AV)" in err


def test_fusing_across_a_pass_boundary_names_the_reduction_and_the_reason(capsys) -> None:  # type: ignore[no-untyped-def]
    err = _error(capsys, ["--cascade", "attention-3pass", "--mapping", "fusemax", "--model", "bert-base",
                          "--seq", "4K"])
    assert "specs/mappings/fusemax.yaml: loops" in err and "makes 3 passes" in err
    assert "SN (pass 2)" in err and "reads GM, which GM reduces over m with max" in err


def test_a_loop_over_a_rank_the_cascade_does_not_have(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    def edit(data) -> None:  # type: ignore[no-untyped-def]
        data["loops"][0]["rank"] = "q"
    path = _mapping(tmp_path, edit)
    err = _error(capsys, ["--mapping", path, "--model", "bert-base", "--seq", "4K"])
    assert f"{path}: loops[0].rank" in err and "no rank 'q'" in err


def test_unknown_keys_and_bad_values_name_the_key(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    def edit(data) -> None:  # type: ignore[no-untyped-def]
        data["placement"]["RM"]["levels"] = ["sram"]
    path = _mapping(tmp_path, edit)
    err = _error(capsys, ["--mapping", path, "--model", "bert-base", "--seq", "4K"])
    assert f"{path}: placement.RM.levels.0" in err
    path = _mapping(tmp_path, lambda data: data.update({"loopz": []}))
    assert f"{path}: loopz: unknown key" in _error(capsys, ["--mapping", path, "--model", "bert-base", "--seq", "4K"])


def test_nothing_is_written_on_error(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = _mapping(tmp_path, _set_factor(0, 100))   # 100 groups of 256 rows: 4K leaves the last ones empty
    err = _error(capsys, ["--mapping", path, "--model", "bert-base", "--seq", "4K"])
    assert "leave the last one empty" in err
    # 4096 rows in groups of at least one 256-row block: at most ceil(4096 / 256) = 16 groups
    assert "expected at most 16" in err
    assert capsys.readouterr().out == ""


def test_the_iterative_loop_must_stream_from_dram(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    # each iteration of the loop over the pass rank brings a new K/V tile from DRAM: the iterative loop
    # (loops[1], m1) at the global buffer is refused, and so is a global-buffer loop outside it
    def iterative_on_chip(data) -> None:  # type: ignore[no-untyped-def]
        data["loops"][1]["level"] = "global_buffer"
    def outer_on_chip(data) -> None:  # type: ignore[no-untyped-def]
        data["loops"][0]["level"] = "global_buffer"
    for edit in (iterative_on_chip, outer_on_chip):
        path = _mapping(tmp_path, edit)
        err = _error(capsys, ["--mapping", path, "--model", "bert-base", "--seq", "4K"])
        assert f"{path}: loops[1].level: expected dram for the iterative loop" in err


def test_the_plans_loop_names_are_fusemaxs() -> None:
    # FuseMax's names (paper §IV, fact sheet §2.5): the three loops over p are p2 (DRAM), p1 (global
    # buffer), p0 (the array's columns); m1 and m0 run once each and keep their rank's name. At 4K on
    # BERT: 16 K/V tiles of 256 keys, 256-row query blocks, 16 blocks per head in P2 groups of P1.
    from attnsim.archsim.spec import load_arch
    from attnsim.mappers.cascade_mapper import map_named
    from attnsim.mappers.designs import DESIGNS, MapOptions
    from attnsim.mappers.workloads import load_workload
    mapped = map_named(DESIGNS["fusemax"].cascade, "fusemax", load_workload("bert-base"), 4096,
                       load_arch("fusemax-cloud"), options=MapOptions(closed_form=True))
    loops = {name: mapped.choices[name] for name in ("p2", "m1", "p1", "m0", "p0")}
    assert list(mapped.choices)[:5] == ["p2", "m1", "p1", "m0", "p0"]
    assert (loops["m1"], loops["m0"], loops["p0"], loops["p2"] * loops["p1"]) == (16, 256, 256, 16)


def test_nothing_fits_names_one_tiles_live_tensors() -> None:
    # one tile at BERT (E = F = 64) on fusemax-cloud, 2-byte words: 256 query rows of Q and RNV (256 x 64
    # each), the running max and denominator (256 each), one K and one V tile of M0 = 256 keys (256 x 64)
    from attnsim.archsim.spec import load_arch
    from attnsim.mappers.designs import MapOptions, mapper
    from attnsim.mappers.errors import MappingError
    from attnsim.mappers.workloads import load_workload
    arch = load_arch("fusemax-cloud", {"global_buffer.capacity_bytes": 131072})
    with pytest.raises(MappingError) as info:
        mapper("fusemax")(load_workload("bert-base"), 1024, arch, options=MapOptions())
    rows, keys, word = 256 * 64 * 2, 256 * 64 * 2, 2 * 256
    total = 2 * rows + 2 * keys + 2 * word
    assert (f"loops[2].factor: nothing fits in global_buffer.capacity_bytes = 131072: the live tensors of one "
            f"tile take {total} bytes (Q {rows} B, BK {keys} B, BV {keys} B, RM {word} B, RD {word} B, "
            f"RNV {rows} B; largest Q, {rows} bytes)") in str(info.value)


def _linear(tmp_path: Path, edit) -> str:  # type: ignore[no-untyped-def]
    data = yaml.safe_load((MAPPINGS_DIR / "linear-fusemax.yaml").read_text())
    edit(data)
    path = tmp_path / "bad-linear.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def test_a_spatial_rank_the_einsum_does_not_have_names_the_einsum_and_rank(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    def edit(data) -> None:  # type: ignore[no-untyped-def]
        data["groups"][0]["spatial"] = {"KV": {"rows": "q", "cols": "f"}}
    path = _linear(tmp_path, edit)
    err = _error(capsys, ["--mapping", path, "--model", "bert-base", "--seq", "4K"])
    assert f"{path}: groups[0].spatial.KV: Einsum KV has no rank 'q'" in err


def test_a_fixed_block_too_big_for_the_buffer_names_its_live_and_staged_tensors(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    # One block of M = 4096 keys (block_factor: M): live KV (E x F = 64 x 64) and Z (E = 64), staged K and
    # V tiles of pe2d.rows = 256 keys x 64, double-buffered: 4096 + 64 + 2 x 2 x 256 x 64 = 69696 words,
    # x 2 B = 139392 bytes.
    def edit(data) -> None:  # type: ignore[no-untyped-def]
        data["groups"][0]["live"] = ["KV", "Z"]
    path = _linear(tmp_path, edit)
    err = _error(capsys, ["--mapping", path, "--model", "bert-base", "--seq", "4K",
                          "--set", "global_buffer.capacity_bytes=4096"])
    assert f"{path}: groups[0]: a block of 4096 along m with its live and staged tensors (KV, Z, K, V)" in err
    assert "takes 139392 bytes, more than global_buffer.capacity_bytes = 4096" in err
