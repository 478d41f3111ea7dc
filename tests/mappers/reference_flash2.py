"""FROZEN REFERENCE (test-only): the hand-written FlashAttention-2 mapper as it was before the generic path
(specs/mappings/flash2.yaml) replaced it; test_cascade_equivalence.py runs both. Nothing on the product path
imports this file.

FlashAttention-2's schedule of the 1-pass cascade (paper Cascade 5) on any architecture.

FuseMax's tiling (``mappers.tiling.fusemax_tiles``: ``M0`` = the 2D array's rows, ``P0`` = its
columns, ``P1`` query blocks resident in the global buffer, K and V re-streamed ``P2`` times), but
FlashAttention-2's schedule: per ``M0 x P0`` tile, everything in series --

    BQK -> LM -> RM -> SLN -> SLD -> SLNV -> PRM -> SPD -> RD -> SPNV -> RNV

-- and the next tile's BQK waits for this tile's RNV: no overlap of the GEMMs with the softmax (a GPU
thread block does the same: tensor-core GEMM, then the online-softmax update, then the next GEMM).
Only the DRAM transfers overlap with compute (K/V tiles are prefetched, double-buffered).

Binding. The per-score Einsums run on the 2D array, spatially over the tile: BQK (``E`` MAC steps),
LM (one ``max``, a reduction down the array's columns), SLN (one ``exp``: the arch's ``ops.exp``
cycles), SLD (one ``add``), SLNV (``F`` MAC steps). One whose op the 2D PEs lack (FLAT's PEs have no
max or exp) runs on the 1D array instead, ``ceil(M0 P0 / PEs)`` steps. The per-query Einsums RM,
PRM (``exp``), SPD, RD and the per-(query, f) SPNV, RNV run on the 1D array over the tile's ``P0``
queries. After all tiles, the deferred division AV = RNV / RD (``F`` divides per query) on the 1D
array: it is one loop after the tile loop -- in a serial schedule its position does not change the
compute time -- while AV's DRAM writes are spread over the tile loop, where they overlap compute.

Per-tile cycles (all in series) = E + 3 F + 2 exp + 5 single-op steps on FuseMax's arrays (E + 3F + 19
with its 7-cycle exp), plus ``F`` per query block for AV.

DRAM traffic (as FuseMax): Q read once, AV written once, K and V once per ``P2`` chunk; per-head
transfers are spread evenly over the head's tiles. Energy: the actions of fact sheet §6.4's FuseMax
model -- 2D: BQK and SLNV MACs, LM max, SLN exp (which on FuseMax's arrays includes the subtract: 6 MAC
+ 1 add), SLD add; 1D: RM max, PRM exp, SPD and SPNV MACs, RD and RNV adds, AV divides; global
buffer reads of Q, BK, BV, RM, RD, RNV and the final RNV/RD, writes of the Q/K/V fills and the
running state. Register files are not charged.
"""
from __future__ import annotations

from fractions import Fraction

from attnsim.archsim.schedule import LoopDep, Schedule
from attnsim.archsim.spec import Arch
from attnsim.mappers.attention_ops import (OpTemplate, ceil_div, compute_op, dram_op, has_op, last_ops,
                                   loop_blocks, op_cycles, spatial_util)
from attnsim.mappers.designs import MapOptions, MappedAttention
from attnsim.mappers.tiling import OnePassTiles, fusemax_tiles
from reference_unfused import check_options
from attnsim.mappers.workloads import Workload

DESIGN = "flash2"
TILE_ORDER = ("BQK", "LM", "RM", "SLN", "SLD", "SLNV", "PRM", "SPD", "RD", "SPNV", "RNV")
"""The per-tile Einsums, in the order FlashAttention-2 runs them."""


def _per_score(id: str, arch: Arch, einsum: str, op: str, scores: int, steps_2d: int, *,
               deps: tuple, glb_read_words: int = 0) -> OpTemplate:
    """A per-score Einsum of one tile: ``steps_2d`` op steps on the 2D array, else on the 1D array."""
    actions_2d = {"global_buffer.read": glb_read_words}
    if has_op(arch, "pe2d", op):
        cycles = steps_2d * op_cycles(arch, "pe2d", op, einsum)
        return compute_op(id, "pe2d", einsum, cycles, {f"pe2d.{op}": scores * steps_2d, **actions_2d},
                          stage=1, deps=deps)
    lanes = arch.pes_1d
    per_step = op_cycles(arch, "pe1d", op, einsum)
    cycles = ceil_div(scores, lanes) * steps_2d * per_step
    return compute_op(id, "pe1d", einsum, cycles, {f"pe1d.{op}": scores * steps_2d, **actions_2d},
                      stage=1, deps=deps, util=spatial_util(scores * steps_2d, lanes, cycles, per_step))


def _per_query(id: str, arch: Arch, einsum: str, op: str, queries: int, width: int, *, deps: tuple,
               glb_read_words: int = 0, glb_write_words: int = 0, stage: int = 1) -> OpTemplate:
    """A per-query Einsum with ``width`` ops per query (1, or F for SPNV/RNV/AV) on the 1D array."""
    lanes = arch.pes_1d
    per_op = op_cycles(arch, "pe1d", op, einsum)
    cycles = ceil_div(queries, lanes) * width * per_op
    ops = queries * width
    return compute_op(id, "pe1d", einsum, cycles,
                      {f"pe1d.{op}": ops, "global_buffer.read": glb_read_words,
                       "global_buffer.write": glb_write_words},
                      stage=stage, deps=deps, util=spatial_util(ops, lanes, cycles, per_op))


def tile_templates(workload: Workload, arch: Arch, tiles: OnePassTiles, prefix: str = "f2:"
                   ) -> list[OpTemplate]:
    """The compute of one ``M0 x P0`` tile, in series (stage 1), as templates named ``prefix + Einsum``."""
    e, f, m0, p0 = workload.head_dim_e, workload.head_dim_f, tiles.m0, tiles.p0
    scores = m0 * p0
    rows, cols = arch.arrays.pe2d.rows, arch.arrays.pe2d.cols
    mac = op_cycles(arch, "pe2d", "mac", "BQK")
    name = {x: f"{prefix}{x}" for x in TILE_ORDER}
    bqk = compute_op(name["BQK"], "pe2d", "BQK", e * mac,
                     {"pe2d.mac": scores * e, "global_buffer.read": e * p0 + e * m0}, stage=1,
                     deps=(f"{prefix}load", LoopDep(name["RNV"], 1)),
                     util=spatial_util(scores * e, rows * cols, e * mac, mac))
    templates = [
        bqk,
        _per_score(name["LM"], arch, "LM", "max", scores, 1, deps=(name["BQK"],)),
        _per_query(name["RM"], arch, "RM", "max", p0, 1, deps=(name["LM"],),
                   glb_read_words=p0, glb_write_words=p0),
        _per_score(name["SLN"], arch, "SLN", "exp", scores, 1, deps=(name["RM"],)),
        _per_score(name["SLD"], arch, "SLD", "add", scores, 1, deps=(name["SLN"],)),
        _per_score(name["SLNV"], arch, "SLNV", "mac", scores, f, deps=(name["SLD"],),
                   glb_read_words=f * m0),
        _per_query(name["PRM"], arch, "PRM", "exp", p0, 1, deps=(name["SLNV"],)),
        _per_query(name["SPD"], arch, "SPD", "mac", p0, 1, deps=(name["PRM"],), glb_read_words=p0),
        _per_query(name["RD"], arch, "RD", "add", p0, 1, deps=(name["SPD"],), glb_write_words=p0),
        _per_query(name["SPNV"], arch, "SPNV", "mac", p0, f, deps=(name["RD"],), glb_read_words=f * p0),
        _per_query(name["RNV"], arch, "RNV", "add", p0, f, deps=(name["SPNV"],), glb_write_words=f * p0),
    ]
    return templates


def map_attention(workload: Workload, seq: int, arch: Arch, *, options: MapOptions) -> MappedAttention:
    """Schedule of FlashAttention-2 for ``workload`` at sequence length ``seq`` (M = P) on ``arch``.

    Raises MappingError when ``seq`` is not a multiple of the 2D array's rows and columns, when not
    even one K/V tile and one block of queries fit in the global buffer, or when the arrays lack an
    op the cascade needs (e.g. no exp on either array).
    """
    check_options(options, DESIGN)
    seq = workload.check_seq(seq)
    tiles = fusemax_tiles(arch, workload, seq)
    e, f, word = workload.head_dim_e, workload.head_dim_f, arch.word_bytes
    heads = workload.batch * workload.heads
    tiles_per_head = tiles.m1 * (seq // tiles.p0)
    read_words = e * seq + (e + f) * seq * tiles.p2          # Q once, K and V once per P2 chunk
    write_words = f * seq                                    # AV once
    load = dram_op("f2:load", arch, read_bytes=Fraction(read_words * word, tiles_per_head),
                   write_bytes=Fraction(write_words * word, tiles_per_head), stage=0,
                   deps=(LoopDep("f2:BQK", 2),),
                   extra_actions={"global_buffer.write": float(Fraction(read_words, tiles_per_head))})
    tile_loop = [load, *tile_templates(workload, arch, tiles)]
    blocks = loop_blocks(tile_loop, heads * tiles_per_head, closed_form=options.closed_form, name="f2",
                         decoupled=("dram",))
    av = _per_query("f2:AV", arch, "AV", "div", tiles.p0, f, deps=(),
                    glb_read_words=f * tiles.p0 + tiles.p0, stage=0)
    query_blocks = heads * (seq // tiles.p0)
    blocks += loop_blocks([av], query_blocks, closed_form=options.closed_form, name="f2av",
                          after=last_ops(tile_loop), decoupled=("dram",))
    schedule = Schedule(blocks=tuple(blocks), name=f"{DESIGN} {workload.name} seq {seq}")
    units = {t.einsum: t.unit for t in tile_loop if t.einsum}
    choices = {"m0": tiles.m0, "m1": tiles.m1, "p0": tiles.p0, "p1": tiles.p1, "p2": tiles.p2,
               "tiles": heads * tiles_per_head, "query_blocks": query_blocks,
               "binding": {**units, "AV": "pe1d"}}
    return MappedAttention(design=DESIGN, schedule=schedule,
                           einsums_2d=tuple(x for x, u in units.items() if u == "pe2d"),
                           einsums_1d=tuple(x for x, u in units.items() if u == "pe1d") + ("AV",),
                           choices=choices)


__all__ = ["DESIGN", "TILE_ORDER", "map_attention", "tile_templates"]
