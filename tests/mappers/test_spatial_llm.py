"""Causal prefill, GQA/MQA and decode on the spatial accelerators (issue #15 §2-3), through the generic
cascade-driven mapper. Every expected value is derived here from the shapes and the tile sizes, not read
from the simulator:

- causal prefill computes the K/V tiles at or below the diagonal: with T x T tiles of 256 x 256 that is
  T (T + 1) / 2 of T^2, so MACs (every tile costed in full) are exactly (T + 1) / (2T) of non-causal and
  latency within a stated margin of it;
- a group of query rows needs only the K/V tiles up to its last row: DRAM traffic counted tile by tile;
- GQA with the group's query heads packed along p reads each K/V head once per pass; unpacked, once per
  query head;
- decode is never faster than the KV cache over the DRAM bandwidth; the mappings that spread the GQA
  group or the KV length over the columns reach at least the naive mapping's utilisation, and no more
  than the columns they occupy.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from attnsim.archsim.engine import run
from attnsim.archsim.spec import load_arch
from attnsim.mappers.cascade_mapper import map_named
from attnsim.mappers.errors import MappingError
from attnsim.mappers.mapping_spec import Masking, load_mapping
from attnsim.mappers.workloads import load_workload
from attnsim.studies.cli import main as cli_main
from attnsim.studies.simulate import simulate

WORD = 2              # fusemax-cloud and flat-cloud: 16-bit words (specs/arch/*.yaml word_bytes)
ROWS = COLS = 256     # both arches' 2D arrays are 256 x 256: M0 = P0 = 256
FUSED = {"fusemax": "fusemax-cloud", "fusemax-arch": "fusemax-cloud", "flash2": "fusemax-cloud",
         "fusemax-cascade": "flat-cloud"}


def _macs(result) -> float:  # type: ignore[no-untyped-def]
    return sum(v for k, v in result.actions.items() if k.endswith(".mac"))


def _point(cascade: str, mapping: str, workload, seq: int, arch: str):  # type: ignore[no-untyped-def]
    spec = load_arch(arch)
    mapped = map_named(cascade, mapping, workload, seq, spec)
    return mapped, run(mapped.schedule, spec)


@pytest.mark.parametrize("design", sorted(FUSED))
def test_causal_prefill_costs_the_fraction_of_tiles_at_or_below_the_diagonal(design: str) -> None:
    seq = 65536
    bert = load_workload("bert-base")
    full_map, full = _point("attention-1pass", design, bert, seq, FUSED[design])
    causal_map, causal = _point("attention-1pass-causal", design, bert.with_shape(causal=True), seq, FUSED[design])
    tiles_per_side = seq // ROWS
    expected = (tiles_per_side + 1) / (2 * tiles_per_side)     # T (T + 1) / 2 of T^2 tiles
    assert causal_map.choices["tiles"] / full_map.choices["tiles"] == pytest.approx(expected, rel=1e-12)
    assert _macs(causal) / _macs(full) == pytest.approx(expected, rel=1e-12)   # tiles costed in full
    # latency: the diagonal's short iterations expose a little more of each K/V tile load; measured
    # within +0.21% of the tile fraction at 64K (fusemax; the others +0.01%), margin to 0.5%
    assert causal.latency_s / full.latency_s == pytest.approx(expected, rel=5e-3)


@pytest.mark.parametrize("design, seq", [("unfused", 65536), ("flat", 65536), ("flat", 16384)])
def test_causal_fusion_groups_compute_the_live_cells_of_the_mask(design: str, seq: int) -> None:
    # unfused: QK and AV in 256 x 256 tiles, the softmax row by row over 256-key chunks; FLAT: blocks of
    # `block` query rows over 256-key chunks. A cell computes when some key <= some query in it.
    bert = load_workload("bert-base")
    full_map, full = _point("attention-3pass", design, bert, seq, "flat-cloud")
    causal_map, causal = _point("attention-3pass-causal", design, bert.with_shape(causal=True), seq, "flat-cloud")
    key_tiles = seq // ROWS
    if design == "unfused":
        expected = (key_tiles + 1) / (2 * key_tiles)
    else:
        block = causal_map.choices["groups"]["fl"]["block"]
        blocks = seq // block
        expected = sum(-(-(b + 1) * block // ROWS) for b in range(blocks)) / (blocks * key_tiles)
    assert _macs(causal) / _macs(full) == pytest.approx(expected, rel=1e-12)
    # latency: measured +0.31% (unfused, 64K), +0.00% (FLAT) off the cell fraction; margin to 1%
    assert causal.latency_s / full.latency_s == pytest.approx(expected, rel=1e-2)
    assert causal.traffic_bytes < full.traffic_bytes   # masked QK/A cells and K/V chunks are not moved


def test_causal_traffic_is_the_k_v_tiles_each_group_of_query_rows_needs() -> None:
    seq = 65536
    bert = load_workload("bert-base").with_shape(causal=True)
    mapped, result = _point("attention-1pass-causal", "fusemax", bert, seq, "fusemax-cloud")
    rows_per_group = mapped.choices["p1"] * COLS        # P1 blocks of P0 query rows
    groups = seq // rows_per_group
    assert groups > 1   # so that the count below differs from the non-causal one
    # group g's last row is (g + 1) rows_per_group - 1: it needs the K/V tiles 0 .. (g + 1) rows_per_group / M0 - 1
    kv_tiles = sum((g + 1) * rows_per_group // ROWS for g in range(groups))
    heads = bert.batch * bert.heads
    per_head = kv_tiles * ROWS * (bert.head_dim_e + bert.head_dim_f) * WORD \
        + seq * (bert.head_dim_e + bert.head_dim_f) * WORD                     # Q in, the output out, once
    assert result.traffic_bytes == heads * per_head


def test_masked_tiles_compute_runs_the_full_square() -> None:
    bert = load_workload("bert-base")
    mapping = load_mapping("fusemax")
    computed = mapping.model_copy(update={"masking": Masking(masked_tiles="compute")})
    _, full = _point("attention-1pass", "fusemax", bert, 16384, "fusemax-cloud")
    _, masked = _point("attention-1pass-causal", computed, bert.with_shape(causal=True), 16384, "fusemax-cloud")
    assert (masked.cycles, masked.traffic_bytes, _macs(masked)) == (full.cycles, full.traffic_bytes, _macs(full))


def test_packed_gqa_group_under_the_causal_mask_skips_what_a_brute_force_count_skips() -> None:
    # 12 query heads over 4 K/V heads: groups of 3 packed along p, row r at query position r // 3
    bert = load_workload("bert-base").with_shape(kv_heads=4, causal=True)
    seq, group = 4096, 3
    mapped, _ = _point("attention-1pass-causal", "fusemax-gqa", bert, seq, "fusemax-cloud")
    rows = np.arange(seq * group)
    last_position = (rows.reshape(-1, COLS) // group).max(axis=1)        # per packed query tile
    first_key = np.arange(seq // ROWS) * ROWS                            # per K/V tile
    live = (first_key[None, :] <= last_position[:, None]).sum()          # some key <= some query position
    assert mapped.choices["tiles"] == bert.batch * 4 * live


@pytest.mark.parametrize("mapping, packed", [("fusemax", False), ("fusemax-gqa", True)])
def test_gqa_traffic_reads_each_kv_head_once_per_pass_when_the_group_is_packed(mapping: str, packed: bool) -> None:
    llama = load_workload("llama-3.1-8b").with_shape(causal=False)
    seq = 4096
    mapped, result = _point("attention-1pass", mapping, llama, seq, "fusemax-cloud")
    width = llama.head_dim_e + llama.head_dim_f
    passes = mapped.choices["p2"]           # times the K/V of a head are streamed
    streams = llama.batch * (llama.key_value_heads if packed else llama.heads)
    queries_and_outputs = llama.batch * llama.heads * seq * width * WORD
    assert result.traffic_bytes == queries_and_outputs + streams * passes * seq * width * WORD


DECODE = [("llama-3.1-8b", 8, 65536), ("falcon-7b", 4, 16384), ("bert-base", 4, 16384)]   # GQA 4, MQA 71, MHA


@pytest.mark.parametrize("model, batch, kv_len", DECODE)
def test_decode_is_never_faster_than_the_kv_cache_over_dram_and_spreading_raises_utilisation(
        model: str, batch: int, kv_len: int) -> None:
    arch = load_arch("fusemax-cloud")
    bandwidth = arch.dram.bandwidth_bytes_per_s
    w = load_workload(model)
    group = w.heads // w.key_value_heads
    width = w.head_dim_e + w.head_dim_f
    kv_cache = batch * w.key_value_heads * kv_len * width * WORD      # K and V, each byte read once
    queries_and_outputs = batch * w.heads * width * WORD
    runs = {m: simulate(None, model, kv_len, mapping=m, shape={"phase": "decode", "batch": batch})
            for m in ("fusemax", "fusemax-gqa", "fusemax-splitk")}
    for report in runs.values():
        assert report["q_len"] == 1 and report["kv_len"] == kv_len
        assert report["latency_s"] >= kv_cache / bandwidth
        assert report["kv_bytes"] == kv_cache
    # naive and split-K: every query head streams its K/V head; packed: once per K/V head
    assert runs["fusemax"]["traffic_bytes"] == group * kv_cache + queries_and_outputs
    assert runs["fusemax-splitk"]["traffic_bytes"] == group * kv_cache + queries_and_outputs
    assert runs["fusemax-gqa"]["traffic_bytes"] == kv_cache + queries_and_outputs
    # utilisation: one query row uses one of the 256 columns; the packed group `group` of them; S splits S
    splits = runs["fusemax-splitk"]["choices"]["sizes"]["S"]
    assert runs["fusemax"]["util_2d"] <= 1 / COLS
    assert runs["fusemax-gqa"]["util_2d"] <= min(group, COLS) / COLS
    assert runs["fusemax-splitk"]["util_2d"] <= splits / COLS
    assert runs["fusemax-gqa"]["util_2d"] >= runs["fusemax"]["util_2d"]
    assert runs["fusemax-splitk"]["util_2d"] >= runs["fusemax"]["util_2d"]


def test_simulate_cli_decode_prints_latency_utilisation_traffic_and_the_bound(capsys) -> None:  # type: ignore[no-untyped-def]
    args = ["simulate", "--workload", "llama-3.1-8b", "--phase", "decode", "--kv-len", "64K", "--batch", "8",
            "--arch", "fusemax-cloud", "--mapping", "fusemax-gqa", "--json"]
    assert cli_main(args) == 0
    report = json.loads(capsys.readouterr().out)
    kv_cache = 8 * 8 * 65536 * 256 * WORD
    assert (report["phase"], report["q_len"], report["kv_len"], report["batch"]) == ("decode", 1, 65536, 8)
    assert report["kv_bytes"] == kv_cache and report["bound"] == "dram"
    assert report["latency_s"] >= report["dram_floor_s"] >= kv_cache / load_arch("fusemax-cloud").dram.bandwidth_bytes_per_s
    assert {"util_2d", "util_1d", "traffic_bytes", "dram_bandwidth_fraction"} <= set(report)


@pytest.mark.parametrize("args, message", [
    (["--phase", "verify"], "--phase: expected one of prefill, decode, chunked-prefill"),
    (["--seq", "4K", "--kv-len", "4K"], "give either --seq or --kv-len"),
])
def test_simulate_cli_refuses_bad_shapes_in_one_line(capsys, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    base = ["simulate", "--design", "fusemax", "--workload", "llama-3.1-8b"]
    base += [] if "--seq" in args else ["--kv-len", "4K"]
    assert cli_main([*base, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err


def test_a_causal_cascade_is_refused_where_query_and_key_indices_do_not_align(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # the built-in causal cascades are end-aligned (m <= p + M - P) and take any q_len <= kv_len
    # (tests/mappers/test_chunked_prefill.py); a filter m <= p, which assumes the queries are the keys,
    # is refused where they are not
    from importlib import resources

    text = resources.files("attnsim.specs").joinpath("cascades/attention-1pass-causal.yaml").read_text()
    assert text.count("<= p + M - P") == 3   # the description and the two filters
    path = tmp_path / "start-aligned.yaml"
    path.write_text(text.replace("<= p + M - P", "<= p").replace("name: attention-1pass-causal", "name: start-aligned"))
    chunk = load_workload("llama-3.1-8b").with_shape(phase="chunked-prefill", q_len=512)
    with pytest.raises(MappingError, match="needs q_len = kv_len"):
        map_named(str(path), "fusemax", chunk, 4096, load_arch("fusemax-cloud"))
    with pytest.raises(MappingError, match="is causal but the cascade attention-1pass has no mask"):
        map_named("attention-1pass", "fusemax", load_workload("llama-3.1-8b"), 4096, load_arch("fusemax-cloud"))


@pytest.mark.parametrize("op, pack", [("<=", 1), ("<", 1), ("<=", 3), (">=", 1)])
def test_live_cell_fraction_equals_a_brute_force_count(op: str, pack: int) -> None:
    # cells of 7 keys x 5 query rows over 40 keys x 33 rows (partial last cells); a cell is live when the
    # filter key (op) query position holds for some key and row in it, the row at position row // pack
    from fractions import Fraction

    from attnsim.einsum_ir.model import rank_symbol
    from attnsim.mappers.masking import _condition, live_cell_fraction

    m, p = rank_symbol("m"), rank_symbol("p")
    condition = _condition(m, op, p, {}, "test")
    keys, rows = np.arange(40), np.arange(33)
    compare = {"<=": np.less_equal, "<": np.less, ">=": np.greater_equal}[op]
    holds = compare(keys[:, None], (rows // pack)[None, :])
    live = sum(bool(holds[i:i + 7, j:j + 5].any()) for i in range(0, 40, 7) for j in range(0, 33, 5))
    cells = -(-40 // 7) * -(-33 // 5)
    assert live_cell_fraction([condition], {"m": (7, 40), "p": (5, 33)}, "p", pack) == Fraction(live, cells)
