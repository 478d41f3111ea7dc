"""Tile-size rules of the 1-pass dataflows: functions of (architecture, workload, sequence length).

FuseMax (fact sheet §2.5, §4.1) partitions the key rank ``M = M1 * M0`` and the query rank
``P = P2 * P1 * P0``: ``M0`` runs over the 2D array's rows (PE, meshY), ``P0`` over its columns
(PE_col, meshX) and over the 1D array, ``P1`` query blocks of ``P0`` columns stay in the global buffer
while all ``M1`` key/value tiles stream past them, and ``P2`` is how often that repeats, i.e. how many
times K and V are re-read from DRAM.

The global-buffer sizing rule (the artifact's ``proposal.py`` constructor, fact sheet §2.5)::

    available = capacity - M0 * (E + F) * word_bytes          # one BK tile and one BV tile
    bound     = available // (bytes_per_query * P0)            # whole query blocks that fit
    blocks    = ceil(P / P0)
    P1        = blocks if blocks <= bound else the largest power of two <= bound   (resident_blocks)
    P2        = ceil(blocks / P1);   M1 = ceil(M / M0)

with ``bytes_per_query`` the global-buffer bytes one query row keeps:

* FuseMax: ``(E + 1 + 1 + F) * word_bytes`` -- the row of Q, its running max RM, running denominator RD
  and running numerator RNV[f];
* +Cascade (the 1-pass cascade on FLAT's PEs, fact sheet §4.3): QK and SLN of the current ``M0`` tile
  also live in the global buffer, ``(E + F + 2 * M0 + 2) * word_bytes`` -- which is the sheet's
  ``(E + F + 514) * 2`` for ``M0 = 256``.

The artifact takes ``P1`` = the largest divisor of ``P / P0`` that is ``<= bound``. At its power-of-two
lengths that is the largest power of two ``<= bound`` (or all of ``P / P0`` when that fits), which is
what :func:`resident_blocks` takes at *every* length: a divisor rule makes the query block, and with it
the K/V re-reads ``P2``, depend on the factors of the length (at 882944 = 256 x 3449, 3449 prime,
``P1`` collapses to 1 and the traffic is 132x that at 889600), and the capacity bound itself (251
blocks for BERT on 16 MB) would change the paper's points (``P2`` = 17 instead of 32 at 1M). With a
power of two, ``P2`` = ceil(blocks / P1) never decreases as the length grows.

Remainders (any length >= 1): ``M1 = ceil(M / M0)`` K/V tiles, the last holding ``M - (M1 - 1) M0``
keys; ``ceil(P / P0)`` query blocks, the last holding ``P - (blocks - 1) P0`` rows; ``P2`` groups of
``P1`` blocks, the last group holding what is left. A partial tile occupies the array for the same
pass (the 2D array's rows and columns are clocked as one: ``ceil(extent / rows)`` steps), so its
cycles on the 2D array are a full tile's; it moves and computes only its real elements, so traffic,
actions and energy count those (the 1D array's lanes run ``ceil(rows / lanes)`` steps, fewer when a
partial block needs fewer). :func:`tile_counts` gives the count and the last extent of one rank.

The sheet writes the rule with ``M0`` in the two places where this module uses ``P0``; the artifact has
``M0 = P0 = 256`` so the two readings agree there, and ``P0`` is the one that counts query rows.

Self-attention: ``M = P = seq``. Sizes in elements unless the name says bytes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from attnsim.archsim.spec import Arch
from attnsim.mappers.errors import MappingError
from attnsim.mappers.workloads import Workload

Rule = Literal["fusemax", "cascade"]


@dataclass(frozen=True)
class OnePassTiles:
    """The tile sizes of a 1-pass (FuseMax-style) mapping of one (arch, workload, seq) point.

    ``m1 = ceil(seq / m0)`` K/V tiles, the last of ``m0_last`` keys; ``p2`` groups of ``p1`` query
    blocks of ``p0`` rows, the last group of ``p1_last`` blocks whose last block has ``p0_last`` rows
    (all equal to ``p1`` / ``p0`` / ``m0`` when the length divides). ``p1_bound`` is the raw capacity
    bound on ``p1``; ``glb_bytes_per_query`` and ``glb_available_bytes`` are the two sides of the
    sizing rule, in bytes.
    """

    rule: Rule
    seq: int
    m0: int
    m1: int
    p0: int
    p1: int
    p2: int
    p1_bound: int
    glb_bytes_per_query: int
    glb_available_bytes: int
    glb_capacity_bytes: int
    m0_last: int = 0
    p1_last: int = 0
    p0_last: int = 0

    @property
    def query_blocks(self) -> int:
        """Query blocks of ``p0`` rows per head: ``ceil(seq / p0)``."""
        return (self.p2 - 1) * self.p1 + self.p1_last

    @property
    def query_block(self) -> int:
        """Query rows resident in the global buffer at a time: ``P1 * P0``."""
        return self.p1 * self.p0

    @property
    def glb_used_bytes(self) -> int:
        """Global-buffer bytes the rule's working set takes: K/V tiles plus ``P1 * P0`` query rows."""
        return (self.glb_capacity_bytes - self.glb_available_bytes) + self.query_block * self.glb_bytes_per_query


def tile_counts(extent: int, tile: int) -> tuple[int, int]:
    """(tiles, extent of the last tile) when ``extent`` elements are cut into tiles of ``tile``:
    ``ceil(extent / tile)`` tiles, the last holding ``extent - (tiles - 1) * tile`` (== ``tile`` when it
    divides). Both arguments >= 1."""
    if extent < 1 or tile < 1:
        raise ValueError(f"expected extent >= 1 and tile >= 1, got {extent} and {tile}")
    tiles = -(-extent // tile)
    return tiles, extent - (tiles - 1) * tile


def resident_blocks(blocks: int, bound: int) -> int:
    """Query blocks kept resident in the global buffer (``P1``) out of ``blocks`` (``ceil(P / P0)``)
    when at most ``bound`` fit: all of them if they fit (no K/V re-read), else the largest power of two
    ``<= bound`` (module docstring: the artifact's divisor rule at its power-of-two lengths, extended
    so that ``ceil(blocks / P1)`` re-reads never decrease as the length grows). Arguments >= 1."""
    if blocks < 1 or bound < 1:
        raise ValueError(f"expected blocks >= 1 and bound >= 1, got {blocks} and {bound}")
    if blocks <= bound:
        return blocks
    return 1 << (bound.bit_length() - 1)


def largest_divisor_at_most(number: int, bound: int) -> int:
    """The largest divisor ``d`` of ``number`` with ``d <= bound`` (``number``, ``bound`` >= 1)."""
    if number < 1 or bound < 1:
        raise ValueError(f"expected number >= 1 and bound >= 1, got {number} and {bound}")
    best = 1
    divisor = 1
    while divisor * divisor <= number:
        if number % divisor == 0:
            for candidate in (divisor, number // divisor):
                if best < candidate <= bound:
                    best = candidate
        divisor += 1
    return best


def fusemax_words_per_query(workload: Workload) -> int:
    """Global-buffer words per resident query row under FuseMax: ``E + 1 + 1 + F`` (Q, RM, RD, RNV)."""
    return workload.head_dim_e + 1 + 1 + workload.head_dim_f


def cascade_words_per_query(workload: Workload, m0: int) -> int:
    """Global-buffer words per resident query row under +Cascade: ``E + F + 2*M0 + 2``.

    Besides Q (``E``) and RNV (``F``), the current tile's QK and SLN rows (``M0`` each) live in the
    global buffer because FLAT's PEs cannot hold them, plus the two scalars RM and RD. With
    ``M0 = 256`` this is the fact sheet's ``E + F + 514`` (§4.3, §4.4).
    """
    return workload.head_dim_e + workload.head_dim_f + 2 * m0 + 2


def _where(arch: Arch, workload: Workload, seq: object) -> str:
    return f"{arch.name} ({arch.origin}), {workload.name} ({workload.origin}), seq {seq}"


def _one_pass_tiles(arch: Arch, workload: Workload, seq: int, rule: Rule) -> OnePassTiles:
    where = _where(arch, workload, seq)
    if isinstance(seq, bool) or not isinstance(seq, int) or seq <= 0:
        raise MappingError(f"{where}: expected a positive integer sequence length, got {seq!r}")
    m0, p0 = arch.arrays.pe2d.rows, arch.arrays.pe2d.cols
    word = arch.word_bytes
    words = fusemax_words_per_query(workload) if rule == "fusemax" else cascade_words_per_query(workload, m0)
    bytes_per_query = words * word
    capacity = arch.global_buffer.capacity_bytes
    kv_tile_bytes = m0 * (workload.head_dim_e + workload.head_dim_f) * word
    available = capacity - kv_tile_bytes
    bound = available // (bytes_per_query * p0) if available > 0 else 0
    if bound < 1:
        raise MappingError(
            f"{where}: nothing fits in global_buffer.capacity_bytes = {capacity}: one K/V tile takes "
            f"{kv_tile_bytes} B and one block of {p0} query rows {bytes_per_query * p0} B "
            f"({rule} rule); expected at least {kv_tile_bytes + bytes_per_query * p0} B")
    m1, m0_last = tile_counts(seq, m0)
    blocks, p0_last = tile_counts(seq, p0)
    p1 = resident_blocks(blocks, bound)
    p2, p1_last = tile_counts(blocks, p1)
    return OnePassTiles(rule=rule, seq=seq, m0=m0, m1=m1, p0=p0, p1=p1, p2=p2,
                        p1_bound=bound, glb_bytes_per_query=bytes_per_query,
                        glb_available_bytes=available, glb_capacity_bytes=capacity,
                        m0_last=m0_last, p1_last=p1_last, p0_last=p0_last)


def fusemax_tiles(arch: Arch, workload: Workload, seq: int) -> OnePassTiles:
    """FuseMax's tile sizes (fact sheet §2.5): ``M0``/``P0`` from the 2D array, ``P1`` from the buffer.

    Any ``seq`` >= 1 (partial last tiles, module docstring). Raises MappingError when not even one K/V
    tile plus one block of ``P0`` query rows fits in the global buffer.
    """
    return _one_pass_tiles(arch, workload, seq, "fusemax")


def cascade_tiles(arch: Arch, workload: Workload, seq: int) -> OnePassTiles:
    """+Cascade's tile sizes (fact sheet §4.3-4.4): FuseMax's rule with QK and SLN rows in the buffer.

    Note: the §4.4 values (P1 <= 50 for E = F = 64, P2 = 1, 1, 2, 8, 32, 128) follow from a 16 MB
    global buffer, i.e. the artifact sizes +Cascade with FuseMax's buffer although it runs on FLAT's
    PEs; pass the architecture whose capacity you mean.
    """
    return _one_pass_tiles(arch, workload, seq, "cascade")


def spilled_fraction(available_bytes: float, fibre_length: int, word_bytes: int = 2) -> float:
    """Fraction of an M-fibre (one query row of QK) that does not fit on chip and goes to DRAM.

    The artifact's Unfused/FLAT softmax model (fact sheet §2.5): the buffer must hold one M-fibre of
    ``fibre_length`` words, ``word_bytes * M`` bytes; ``1 - min(1, available / (word_bytes * M))``.
    ``available_bytes`` <= 0 spills everything.
    """
    if isinstance(fibre_length, bool) or not isinstance(fibre_length, int) or fibre_length <= 0:
        raise MappingError(f"spilled_fraction: fibre_length: expected a positive integer, got {fibre_length!r}")
    if word_bytes <= 0:
        raise MappingError(f"spilled_fraction: word_bytes: expected a positive integer, got {word_bytes!r}")
    fibre_bytes = word_bytes * fibre_length
    return 1.0 - min(1.0, max(0.0, available_bytes) / fibre_bytes)


__all__ = ["OnePassTiles", "Rule", "cascade_tiles", "cascade_words_per_query", "fusemax_tiles",
           "fusemax_words_per_query", "largest_divisor_at_most", "resident_blocks", "spilled_fraction",
           "tile_counts"]
