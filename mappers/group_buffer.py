"""What a fused multi-pass group must hold in the global buffer, counted as FLAT's own code counts it, and
the spilled fraction that follows (docs/mapping.md, "FLAT's rule and its table").

A group that fuses the passes of a cascade over its pass rank (FLAT's one group of QK, the 3-pass softmax
and AV) holds, per block of ``block`` rows of its block rank:

* the **score fibres**: one buffer of ``block x`` (the pass rank) words for the fibre intermediates the
  mapping keeps on chip -- each later fibre of the chain (``SN = exp(QK - GM)``, ``A = SN / SD``) is an
  elementwise function of the one before and overwrites it in place, so one fibre per row is live;
* each of the group's inputs and outputs **double-buffered**: an on-chip tensor (``once``, ``chip``) at its block footprint
  (the block rank at ``block``, its other ranks whole), a streamed one at its array tile (``tile``).

``spill = 1 - min(1, capacity / need)`` when a score fibre is on chip, else 0: the fraction of the score
traffic that goes to DRAM. With these counts the spill column of FLAT's configuration table
(``specs/mappings/flat-cloud.yaml``, the FLAT authors' code) follows exactly at every on-chip row, with
``block = P1`` for row granularity and ``block = P`` (the whole head) for head granularity
(tests/mappers/test_flat_rule.py derives it independently). Units: words (elements) unless the name says
bytes. Nothing here names a particular Einsum or tensor.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

ON_CHIP_MODES = frozenset({"once", "chip"})
"""Traffic modes (``GroupChoice.traffic``) that keep a tensor in the global buffer."""


@dataclass(frozen=True)
class GroupBuffer:
    """A group's buffer need at one block: ``score_words`` (the one in-place fibre buffer, 0 when no
    score fibre is on chip) and ``other_words`` (everything else, double-buffered)."""

    score_words: int
    other_words: int

    @property
    def need_words(self) -> int:
        return self.score_words + self.other_words

    def spill(self, capacity_words: int) -> float:
        """Fraction of the score traffic that spills: ``1 - min(1, capacity / need)`` (0 without scores)."""
        if self.score_words == 0 or self.need_words <= capacity_words:
            return 0.0
        return 1.0 - capacity_words / self.need_words

    def onchip_bytes(self, capacity_bytes: int, word_bytes: int) -> int:
        """Bytes the group occupies in the buffer: its need, at most the capacity (the rest spills)."""
        return min(capacity_bytes, self.need_words * word_bytes)


def group_buffer(tensor_ranks: Mapping[str, Sequence[str]], traffic: Mapping[str, str], fibres: Iterable[str],
                 block_rank: str, block: int, extents: Mapping[str, int], tile: Mapping[str, int]) -> GroupBuffer:
    """The buffer need (module docstring) of a group whose tensors have ``tensor_ranks`` (rank variables),
    placed by ``traffic`` (missing: streamed), with ``fibres`` the intermediates that hold the pass rank
    and the block rank (score fibres); ``extents`` of every rank, ``tile`` the array tile's. ``tensor_ranks``
    holds the group's inputs, outputs and score fibres (per-row summaries live in the units' registers)."""
    fibres = set(fibres)
    block_extents = {**extents, block_rank: block}
    score = 0
    other = 0
    for tensor, ranks in tensor_ranks.items():
        on_chip = traffic.get(tensor) in ON_CHIP_MODES
        if tensor in fibres:
            if on_chip:
                score = max(score, math.prod(block_extents[r] for r in ranks))
            continue
        if on_chip:
            other += 2 * math.prod(block_extents[r] for r in ranks)
        else:
            other += 2 * math.prod(min(tile.get(r, extents[r]), block_extents[r]) for r in ranks)
    return GroupBuffer(score, other)


__all__ = ["GroupBuffer", "ON_CHIP_MODES", "group_buffer"]
