"""The FuseMax artifact's analytical model (fact sheet §4.4, §6.4) as plain functions: a TEST ORACLE.

Never imported by package code. The project's simulator must arrive at its cycle counts by executing a
mapping's schedule; these closed forms are what it should agree with where the artifact's assumptions
hold. Every constant below is written from the fact sheet, not read from ``specs/``: the oracle stays
independent of the code it checks.

Functions take ``(model, seq)``: ``model`` is anything with ``batch``, ``heads``, ``head_dim_e``,
``head_dim_f``, ``d_model``, ``ffn`` and ``name`` (a :class:`mappers.workloads.Workload` or a
``paper_data.Model``); ``seq`` is ``M = P`` (self-attention). Latencies in seconds, energies in pJ,
traffic in bytes, cycles in clock cycles of the 940 MHz clock.

Symbols (sheet §4.4): ``u = B*H*(M/256)*(P/256)`` is the cycles of a per-(m1, p) operation on a
256-wide array; ``v = B*H*M*P/256`` the cycles of a per-(m, p) operation on 256 PEs; ``M1 = M/256``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# -- constants (fact sheet §8) ---------------------------------------------------------------------
CLOCK_HZ = 940e6
DRAM_BYTES_PER_S = 400 * 2**30
WORD_BYTES = 2
PE = 256  # 2D array is PE x PE, 1D array PE wide
FUSEMAX_GLB_BYTES = 16 * 2**20
FLAT_P1_DRAM_BOUND = 1024  # FLAT's P1 where it is DRAM-bound (>= 256K; §4.4, §4.5)

MAC_PJ = 17.1645
ADD_PJ = 8.3395
MAX_PJ = 0.028036
EXP_UNIT_PJ = 94.6475  # FLAT's 1D exp unit
DIV_PJ = 36.251153
DRAM_PJ_PER_8_BYTES = 249.6
GLB16_READ_PJ_PER_ROW, GLB16_WRITE_PJ_PER_ROW = 12512.76, 15751.46  # 16 MB, 512-byte rows
GLB32_READ_PJ_PER_ROW, GLB32_WRITE_PJ_PER_ROW = 23854.6, 27097.5  # 32 MB
WORDS_PER_GLB_ROW = 256
RF1D_WRITE_PJ = 1.906

LINEAR_EFFICIENCY = {"t5-small": 0.96}
"""§4.4: the Timeloop mapper reaches ideal 256x256 utilisation on the linear layers except T5 (0.96)."""


class ModelLike(Protocol):
    """What the oracle reads of a model."""

    name: str
    batch: int
    heads: int
    head_dim_e: int
    head_dim_f: int
    d_model: int
    ffn: int


@dataclass(frozen=True)
class Dims:
    """Derived sizes of one (model, seq) point (element counts; ``u``, ``v`` in cycles)."""

    b: int
    h: int
    e: int
    f: int
    m: int
    p: int
    m1: int
    u: float
    v: float
    n: int  # B*H*M*P
    n1: int  # B*H*M1*P
    q_bytes: int  # |Q| = B*H*E*P*2
    s_bytes: int  # S = B*H*M*P*2, one M x P score tensor


def dims(model: ModelLike, seq: int) -> Dims:
    """The sheet's symbols at one point."""
    b, h, e, f = model.batch, model.heads, model.head_dim_e, model.head_dim_f
    m = p = seq
    m1 = m // PE
    return Dims(b=b, h=h, e=e, f=f, m=m, p=p, m1=m1, u=b * h * (m / PE) * (p / PE), v=b * h * m * p / PE,
                n=b * h * m * p, n1=b * h * m1 * p, q_bytes=b * h * e * p * WORD_BYTES,
                s_bytes=b * h * m * p * WORD_BYTES)


def _largest_divisor_at_most(number: int, bound: int) -> int:
    return max(d for d in range(1, min(number, bound) + 1) if number % d == 0)


def p2_from_rule(model: ModelLike, seq: int, words_per_query: int, glb_bytes: int = FUSEMAX_GLB_BYTES) -> int:
    """P2 under the artifact's sizing rule (§2.5) for a per-query GLB footprint in words."""
    available = glb_bytes - PE * (model.head_dim_e + model.head_dim_f) * WORD_BYTES
    bound = available // (words_per_query * WORD_BYTES * PE)
    blocks = seq // PE
    return blocks // _largest_divisor_at_most(blocks, min(bound, blocks))


def fusemax_p2(model: ModelLike, seq: int) -> int:
    """FuseMax's P2 (§2.5): per query E + 1 + 1 + F words."""
    return p2_from_rule(model, seq, model.head_dim_e + 2 + model.head_dim_f)


def cascade_p2(model: ModelLike, seq: int) -> int:
    """+Cascade's P2 (§4.3-4.4): per query E + F + 514 words, with a 16 MB buffer."""
    return p2_from_rule(model, seq, model.head_dim_e + model.head_dim_f + 514)


def one_pass_traffic_bytes(model: ModelLike, seq: int, p2: int) -> int:
    """2|Q| + 2|Q|*P2: Q read once, AV written once, K and V once per P2 chunk (E = F; §2.5, §4.4)."""
    d = dims(model, seq)
    return 2 * d.q_bytes + 2 * d.q_bytes * p2


def memory_latency_s(traffic_bytes: float) -> float:
    """Traffic / DRAM bandwidth."""
    return traffic_bytes / DRAM_BYTES_PER_S


# -- FuseMax (+Binding) ------------------------------------------------------------------------------

def fusemax_einsum_cycles(model: ModelLike, seq: int) -> dict[str, float]:
    """Per-Einsum cycles (§4.4 table: Timeloop mac cycles x FU cost)."""
    d = dims(model, seq)
    u = d.u
    return {"QK": u * d.e, "SLNV": u * d.f, "LM": u, "SLN": 7 * u, "SLD": u, "RM": u, "PRM": 7 * u,
            "SPD": u, "RD": u, "SPNV": u * d.f, "RNV": u * d.f, "AV": u * d.f / d.m1}


FUSEMAX_2D_EINSUMS = ("QK", "LM", "SLN", "SLD", "SLNV")
FUSEMAX_1D_EINSUMS = ("RM", "PRM", "SPD", "RD", "SPNV", "RNV", "AV")


def fusemax_compute_cycles(model: ModelLike, seq: int) -> float:
    """§4.2: max(QK+LM, RD+RNV+AV) + RM + max(SLN+SLD, PRM+SPD) + max(SLNV, SPNV)."""
    c = fusemax_einsum_cycles(model, seq)
    return (max(c["QK"] + c["LM"], c["RD"] + c["RNV"] + c["AV"]) + c["RM"]
            + max(c["SLN"] + c["SLD"], c["PRM"] + c["SPD"]) + max(c["SLNV"], c["SPNV"]))


def fusemax_traffic_bytes(model: ModelLike, seq: int) -> int:
    return one_pass_traffic_bytes(model, seq, fusemax_p2(model, seq))


def fusemax_latency_s(model: ModelLike, seq: int) -> float:
    return max(fusemax_compute_cycles(model, seq) / CLOCK_HZ, memory_latency_s(fusemax_traffic_bytes(model, seq)))


def _busy_share(busy_cycles: float, latency_s: float) -> float:
    return busy_cycles / (latency_s * CLOCK_HZ)


def fusemax_utilisation(model: ModelLike, seq: int) -> tuple[float, float]:
    """(2D, 1D) utilisation: busy cycles of each array's Einsums / latency."""
    c, latency = fusemax_einsum_cycles(model, seq), fusemax_latency_s(model, seq)
    return (_busy_share(sum(c[x] for x in FUSEMAX_2D_EINSUMS), latency),
            _busy_share(sum(c[x] for x in FUSEMAX_1D_EINSUMS), latency))


def fusemax_einsum_2d_shares(model: ModelLike, seq: int) -> dict[str, float]:
    """Fig. 7: each 2D Einsum's busy cycles / latency."""
    c, latency = fusemax_einsum_cycles(model, seq), fusemax_latency_s(model, seq)
    return {x: _busy_share(c[x], latency) for x in FUSEMAX_2D_EINSUMS}


# -- +Architecture -----------------------------------------------------------------------------------

def arch_compute_cycles(model: ModelLike, seq: int) -> float:
    """§4.3: max(QK+LM, RD+AV) + 256*LM + RM + max(SLN+SLD, PRM+SPD) + max(SLNV, SPNV+RNV)."""
    c = fusemax_einsum_cycles(model, seq)
    return (max(c["QK"] + c["LM"], c["RD"] + c["AV"]) + PE * c["LM"] + c["RM"]
            + max(c["SLN"] + c["SLD"], c["PRM"] + c["SPD"]) + max(c["SLNV"], c["SPNV"] + c["RNV"]))


def arch_latency_s(model: ModelLike, seq: int) -> float:
    return max(arch_compute_cycles(model, seq) / CLOCK_HZ, memory_latency_s(fusemax_traffic_bytes(model, seq)))


def arch_utilisation(model: ModelLike, seq: int) -> tuple[float, float]:
    c, latency = fusemax_einsum_cycles(model, seq), arch_latency_s(model, seq)
    return (_busy_share(sum(c[x] for x in FUSEMAX_2D_EINSUMS), latency),
            _busy_share(sum(c[x] for x in FUSEMAX_1D_EINSUMS), latency))


def arch_einsum_2d_shares(model: ModelLike, seq: int) -> dict[str, float]:
    c, latency = fusemax_einsum_cycles(model, seq), arch_latency_s(model, seq)
    return {x: _busy_share(c[x], latency) for x in FUSEMAX_2D_EINSUMS}


# -- +Cascade (the 1-pass cascade on FLAT's PEs) -----------------------------------------------------

def cascade_einsum_cycles(model: ModelLike, seq: int) -> dict[str, float]:
    """§4.3-4.4: QK and SLNV on the 2D array; the rest on FLAT's 1D array (exp unit: SLN, PRM = 2)."""
    d = dims(model, seq)
    u, v = d.u, d.v
    return {"QK": u * d.e, "SLNV": u * d.f, "LM": v, "SLN": 2 * v, "SLD": v, "RM": u, "PRM": 2 * u,
            "SPD": u, "RD": u, "SPNV": u * d.f, "RNV": u * d.f, "AV": u * d.f / d.m1}


CASCADE_2D_EINSUMS = ("QK", "SLNV")
CASCADE_1D_EINSUMS = ("LM", "SLN", "SLD", "RM", "PRM", "SPD", "RD", "SPNV", "RNV", "AV")


def cascade_traffic_bytes(model: ModelLike, seq: int) -> int:
    return one_pass_traffic_bytes(model, seq, cascade_p2(model, seq))


def cascade_latency_s(model: ModelLike, seq: int) -> float:
    """max(mem, max(sum 2D, sum 1D)): perfect overlap."""
    c = cascade_einsum_cycles(model, seq)
    compute = max(sum(c[x] for x in CASCADE_2D_EINSUMS), sum(c[x] for x in CASCADE_1D_EINSUMS))
    return max(compute / CLOCK_HZ, memory_latency_s(cascade_traffic_bytes(model, seq)))


def cascade_utilisation(model: ModelLike, seq: int) -> tuple[float, float]:
    c, latency = cascade_einsum_cycles(model, seq), cascade_latency_s(model, seq)
    return (_busy_share(sum(c[x] for x in CASCADE_2D_EINSUMS), latency),
            _busy_share(sum(c[x] for x in CASCADE_1D_EINSUMS), latency))


# -- Unfused -----------------------------------------------------------------------------------------

def gemm_2d_cycles(model: ModelLike, seq: int) -> float:
    """QK (or AV) on the full 256x256 array: B*H*E*M*P / 65536."""
    d = dims(model, seq)
    return d.b * d.h * d.e * d.m * d.p / (PE * PE)


def softmax_1d_cycles(model: ModelLike, seq: int) -> float:
    """3-pass softmax (M, SN, SD, A), 1 cycle per element each, on 256 PEs: 4v."""
    return 4 * dims(model, seq).v


def unfused_traffic_bytes(model: ModelLike, seq: int) -> float:
    """About 4 (|Q| + S) (§4.4): exact at <= 64K, +0.1-0.4% at 256K/1M from mapper tiling."""
    d = dims(model, seq)
    return 4 * (d.q_bytes + d.s_bytes)


def unfused_latency_s(model: ModelLike, seq: int) -> float:
    """Three phases without overlap (§4.4): QK, softmax, AV."""
    d = dims(model, seq)
    gemm = max((2 * d.q_bytes + d.s_bytes) / DRAM_BYTES_PER_S, gemm_2d_cycles(model, seq) / CLOCK_HZ)
    softmax = max(2 * d.s_bytes / DRAM_BYTES_PER_S, softmax_1d_cycles(model, seq) / CLOCK_HZ)
    return 2 * gemm + softmax


def unfused_utilisation(model: ModelLike, seq: int) -> tuple[float, float]:
    """2D: QK + AV on the full array; 1D: the softmax."""
    latency = unfused_latency_s(model, seq)
    return (_busy_share(2 * gemm_2d_cycles(model, seq), latency),
            _busy_share(softmax_1d_cycles(model, seq), latency))


# -- FLAT --------------------------------------------------------------------------------------------

def flat_qk_and_a_off_chip(model: ModelLike, seq: int) -> bool:
    """§2.5: FLAT forces QK and A off-chip at >= 256K (E = 64 models) and >= 128K (XLM, E = 128)."""
    return seq >= (128 * 1024 if model.head_dim_e >= 128 else 256 * 1024)


def flat_dram_bound_traffic_bytes(model: ModelLike, seq: int) -> float:
    """§4.4 where QK and A are off-chip: QK written and read, A written and read (4 S), K and V
    re-read P/P1 times (weight-stationary, P1 = 1024), plus Q read once and AV written once (Q and AV
    are on-chip there, §4.5; these two terms are ours and are < 0.2% of the total)."""
    d = dims(model, seq)
    rereads = d.p // FLAT_P1_DRAM_BOUND
    kv_bytes = d.b * d.h * (d.e + d.f) * d.m * WORD_BYTES
    av_bytes = d.b * d.h * d.f * d.p * WORD_BYTES
    return d.q_bytes + av_bytes + kv_bytes * rereads + 4 * d.s_bytes


def flat_2d_cycles(model: ModelLike, seq: int) -> float:
    """2D busy cycles in full-array equivalents (§4.4 "FLAT 2D use"): QK output-stationary on the
    whole array, B*H*E*M*P/65536; AV for B*H*M*P/256 cycles with only F of the 256 columns busy."""
    d = dims(model, seq)
    return gemm_2d_cycles(model, seq) + d.v * min(d.f, PE) / PE


def flat_2d_elapsed_cycles(model: ModelLike, seq: int) -> float:
    """Elapsed 2D cycles: QK + AV, where AV takes v cycles (only F columns busy)."""
    return gemm_2d_cycles(model, seq) + dims(model, seq).v


def flat_latency_s(model: ModelLike, seq: int) -> float:
    """max(mem, comp_2D, comp_1D) (§4.4). Memory is only modelled where FLAT is DRAM-bound (QK and A
    off-chip): at the other points the sheet gives no traffic formula and says FLAT is 1D-bound."""
    memory = (memory_latency_s(flat_dram_bound_traffic_bytes(model, seq))
              if flat_qk_and_a_off_chip(model, seq) else 0.0)
    return max(memory, flat_2d_elapsed_cycles(model, seq) / CLOCK_HZ,
               softmax_1d_cycles(model, seq) / CLOCK_HZ)


def flat_utilisation(model: ModelLike, seq: int) -> tuple[float, float]:
    latency = flat_latency_s(model, seq)
    return (_busy_share(flat_2d_cycles(model, seq), latency),
            _busy_share(softmax_1d_cycles(model, seq), latency))


# -- end to end --------------------------------------------------------------------------------------

def linear_macs(model: ModelLike, seq: int) -> int:
    """B*P*(4*D*E*H + 2*D*S) (§5 Fig. 1b; E = F)."""
    return model.batch * seq * (4 * model.d_model * model.head_dim_e * model.heads
                                + 2 * model.d_model * model.ffn)


def linear_latency_s(model: ModelLike, seq: int) -> float:
    """Ideal 256x256 utilisation, T5 at 0.96 of ideal (§4.4); the same on every platform."""
    return linear_macs(model, seq) / (PE * PE) / CLOCK_HZ / LINEAR_EFFICIENCY.get(model.name, 1.0)


# -- energy (§6.4) -----------------------------------------------------------------------------------

def fusemax_energy_breakdown_pj(model: ModelLike, seq: int) -> dict[str, float]:
    """FuseMax (+Binding) energy by component, pJ (§6.4, as transcribed)."""
    d = dims(model, seq)
    b, h, e, f, m, p, n, n1 = d.b, d.h, d.e, d.f, d.m, d.p, d.n, d.n1
    p2 = fusemax_p2(model, seq)
    exp_as_macs_pj = 6 * MAC_PJ + ADD_PJ
    compute_2d_mac = n * (e + f) * MAC_PJ + n * 6 * MAC_PJ  # QK, SLNV, and the 6 MACs of each SLN exp
    compute_2d_other = n * ADD_PJ + n * ADD_PJ + n * MAX_PJ  # SLN's add, SLD, LM
    compute_1d = (n1 * (MAX_PJ + exp_as_macs_pj + MAC_PJ + ADD_PJ)  # RM, PRM, SPD, RD
                  + n1 * f * (MAC_PJ + ADD_PJ)  # SPNV, RNV
                  + b * h * f * p * DIV_PJ)  # AV
    dram_words = b * h * e * p + b * h * f * p + b * h * m * (e + f) * p2
    glb_read_words = n1 * e + n1 * e + n1 * f + n1 + n1 + n1 * f + b * h * f * p + b * h * p
    glb_write_words = b * h * e * p + b * h * m * (e + f) * p2 + n1 + n1 + n1 * f
    return {
        "compute_2d_mac": compute_2d_mac,
        "compute_2d_other": compute_2d_other,
        "compute_1d": compute_1d,
        "dram": dram_words / 4 * DRAM_PJ_PER_8_BYTES,
        "glb_read": glb_read_words / WORDS_PER_GLB_ROW * GLB16_READ_PJ_PER_ROW,
        "glb_write": glb_write_words / WORDS_PER_GLB_ROW * GLB16_WRITE_PJ_PER_ROW,
        "reg_file_1d": (3 * n1 + n1 * f) * RF1D_WRITE_PJ,
    }


def fusemax_energy_pj(model: ModelLike, seq: int) -> float:
    return sum(fusemax_energy_breakdown_pj(model, seq).values())


def three_pass_compute_energy_pj(model: ModelLike, seq: int) -> float:
    """Compute energy of 3-pass attention as FLAT's model charges it (§6.4): QK and AV MACs plus,
    per score, max + add (SN's subtract) + exp unit + add (SD) + divide."""
    d = dims(model, seq)
    return d.n * (d.e + d.f) * MAC_PJ + d.n * (MAX_PJ + ADD_PJ + EXP_UNIT_PJ + ADD_PJ + DIV_PJ)


def flat_energy_pj(model: ModelLike, seq: int, traffic_bytes: float) -> float:
    """FLAT energy (§6.4) for a given DRAM traffic: compute + DRAM + 32 MB GLB (4N reads, 3N writes)."""
    d = dims(model, seq)
    glb = (4 * d.n / WORDS_PER_GLB_ROW * GLB32_READ_PJ_PER_ROW
           + 3 * d.n / WORDS_PER_GLB_ROW * GLB32_WRITE_PJ_PER_ROW)
    return three_pass_compute_energy_pj(model, seq) + traffic_bytes / 8 * DRAM_PJ_PER_8_BYTES + glb


def dram_energy_pj(traffic_bytes: float) -> float:
    """DRAM energy of ``traffic_bytes`` (249.6 pJ per 8-byte access)."""
    return traffic_bytes / 8 * DRAM_PJ_PER_8_BYTES
