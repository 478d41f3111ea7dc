"""FLAT's DRAM traffic in the FuseMax artifact, in closed form: the test oracle for FLAT's traffic.

Derived from the artifact's FLAT model (``workspace/src/accel/flat.py``, ``stable_softmax.py`` and
``cascade.py::collect_mem_traffic`` of FPSG-UIUC/micro24-fusemax-artifact) and the Timeloop mappings it
edits (``yamls/baselines/flat-mappings/{qk,av}.yaml``, ``softmax-mappings/*.yaml``), not from attnsim.
It reproduces the artifact's ``attn-flat.csv`` traffic exactly at all 24 points (tested).

Timeloop semantics (the "loop-nest re-fetch" rule). The 2D array is 256 x 256; a tensor placed
off-chip bypasses the global buffer (L3) and is held only in one-word PE registers, so it is re-read
from DRAM once per iteration of every loop that does not index it but sits *outside* a loop that does
(a loop inside all of its indexing loops keeps it stationary in the register). Per Einsum, with the
stationarity the FLAT table gives (permutations inner -> outer at L3, then the DRAM loop over the
``P2 = P / P1`` row blocks of a row-granular fusion):

- QK output-stationary ``E, M/256, P1/256 | P2``: Q[e,p] re-read ``M/256`` times, K[e,m] ``P/256`` times;
- QK weight-stationary ``P1, E, M | P2``: Q once, K ``P2`` times (stationary across the P1 loop);
- AV output-stationary ``M, F, P1/256 | P2``: V[f,m] ``P/256`` times, A once per F tile;
- AV weight-stationary ``P1, F, M | P2``: V ``P2`` times, A once;
- QK and the softmax's and AV's M-fibres are written / read once per element (S = B H M P elements):
  QK written by QK; read by M (the max) and SN (the exponent); SN written by SN and read by A; A
  written by A and read by AV. On chip those are global-buffer accesses; off chip, DRAM accesses.

Spilling (``collect_mem_traffic`` with ``opt_spill``). With a fraction ``s`` of the on-chip M-fibres
spilled (the table's ``proportion_spilled``), every global-buffer access of an on-chip tensor moves
``s`` of its bytes to DRAM, and an on-chip true input or output (Q, K, V, AV) is read / written from DRAM
``1 - s`` of the time. When QK and A are off chip the softmax buffers one M-fibre per query row and
nothing spills at the paper's sizes (``1 - min(1, buffer / 2M)`` = 0). Values are 2-byte words.
"""
from __future__ import annotations

PE = 256
"""The artifact's cloud array dimension (rows = columns)."""


def flat_traffic_bytes(cfg: dict[str, str]) -> float:
    """DRAM bytes of FLAT at one artifact configuration row (``flat_validation.csv`` columns)."""
    b, e, f, h, m, p = (int(cfg[key]) for key in ("B", "E", "F", "H", "M", "P"))
    onchip = {t: cfg[f"{t}_loc"] == "onchip" for t in ("Q", "K", "QK", "A", "V", "AV")}
    spill = float(cfg["proportion_spilled"])
    p1 = int(cfg["P1"]) if cfg["fusion_granularity"] == "row" else p
    p2 = p // p1
    scores = b * h * m * p
    dram_words = 0.0
    buffer_words = 0.0

    def operand(words: int, rereads: int, on_chip: bool, true_io: bool = True) -> None:
        nonlocal dram_words, buffer_words
        if on_chip:
            dram_words += words * (1 - spill) if true_io else 0.0
            buffer_words += words * rereads
        else:
            dram_words += words * rereads

    def fibre(accesses: int, on_chip: bool) -> None:
        nonlocal dram_words, buffer_words
        if on_chip:
            buffer_words += accesses * scores
        else:
            dram_words += accesses * scores

    q_words, k_words, v_words, av_words = b * h * e * p, b * h * e * m, b * h * f * m, b * h * f * p
    if cfg["QK_stationarity"] == "output":
        operand(q_words, m // PE, onchip["Q"])
        operand(k_words, (p1 // PE) * p2, onchip["K"])
    else:
        operand(q_words, 1, onchip["Q"])
        operand(k_words, p2, onchip["K"])
    if cfg["AV_stationarity"] == "output":
        operand(v_words, (p1 // PE) * p2, onchip["V"])
    else:
        operand(v_words, p2, onchip["V"])
    operand(av_words, 1, onchip["AV"])
    fibre(1, onchip["QK"])          # QK written by QK
    fibre(max(1, f // PE), onchip["A"])  # A read by AV, once per F tile
    if onchip["QK"]:
        fibre(5, True)              # QK read by M and SN; SN written; SN read by A; A written
    else:
        fibre(2, False)             # QK read by M from DRAM; A written to DRAM
        # SN's fibre (QK read by SN, SN written and read) stays on chip and does not spill here.
    return 2.0 * (dram_words + buffer_words * spill)
