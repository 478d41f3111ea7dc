"""Energy tables, energy of action counts, and chip area (archsim.energy, archsim.area).

Every expected number is the FuseMax fact sheet's (§3.5, §3.6, §6.4, §8), written here by hand; the
formulas of §6.4 are re-typed here, not taken from the code.
"""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnsim.archsim import SpecError, load_arch
from attnsim.archsim.area import area_breakdown_um2, area_mm2
from attnsim.archsim.energy import energy_breakdown_pj, energy_pj

FUSEMAX = load_arch("fusemax-cloud")
FLAT = load_arch("flat-cloud")
FLAT_EDGE = load_arch("flat-edge")

# ---- fact sheet §3.5 (compute, register file, DRAM) and §3.6 (global buffer), pJ
MAC, ADD, MAX, EXP_UNIT, DIV = 17.1645, 8.3395, 0.028036, 94.6475, 36.251153
EXP_BY_MACS = 6 * MAC + ADD  # FuseMax: exp = 6 MAC + 1 add (§3.5 "exp cost in latency")
RF_READ, RF_WRITE = 2.194, 1.906
DRAM_PER_64_BITS = 3.9 * 64  # HBM2 3.9 pJ/bit
GLB_16MB = (12512.76, 15751.46)
GLB_32MB = (23854.6, 27097.5)
GLB_5MB = (5859.9, 7881.7)  # TransFusion reference point, §3.6


def _edge_glb_pj(e5: float, e16: float) -> float:
    """The flat-edge spec's stated method: power law through the 5 MB and 16 MB points, at 512 KiB."""
    exponent = math.log(e16 / e5) / math.log(16 / 5)
    return e16 * (0.5 / 16) ** exponent


def _table(pe2d: dict[str, float], pe1d: dict[str, float], glb: tuple[float, float]) -> dict[str, tuple[float, str]]:
    table = {f"pe2d.{op}": (pj, "op") for op, pj in pe2d.items()}
    table |= {f"pe1d.{op}": (pj, "op") for op, pj in pe1d.items()}
    for array in ("pe2d", "pe1d"):
        table |= {f"{array}.register_file.read": (RF_READ, "word"),
                  f"{array}.register_file.write": (RF_WRITE, "word")}
    table |= {"global_buffer.read": (glb[0], "row"), "global_buffer.write": (glb[1], "row"),
              "dram.read": (DRAM_PER_64_BITS, "access"), "dram.write": (DRAM_PER_64_BITS, "access")}
    return table


FLAT_1D = {"mac": MAC, "add": ADD, "max": MAX, "div": DIV, "exp": EXP_UNIT}
EXPECTED_ENERGY = {
    # log: no log unit either; costed like the exp on the MACs (6 MAC + 1 add, issue #16)
    "fusemax-cloud": _table({"mac": MAC, "add": ADD, "max": MAX, "exp": EXP_BY_MACS, "log": EXP_BY_MACS},
                            {"mac": MAC, "add": ADD, "max": MAX, "div": DIV, "exp": EXP_BY_MACS, "log": EXP_BY_MACS},
                            GLB_16MB),
    "flat-cloud": _table({"mac": MAC, "add": ADD}, FLAT_1D, GLB_32MB),
    "flat-edge": _table({"mac": MAC, "add": ADD}, FLAT_1D,
                        (_edge_glb_pj(GLB_5MB[0], GLB_16MB[0]), _edge_glb_pj(GLB_5MB[1], GLB_16MB[1]))),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_ENERGY))
def test_energy_tables_equal_the_fact_sheet(name: str) -> None:
    arch = load_arch(name)
    expected = EXPECTED_ENERGY[name]
    assert set(arch.energy) == set(expected)
    rel = 1e-4 if name == "flat-edge" else 1e-9  # edge GLB: written to 5 significant digits
    for key, (pj, per) in expected.items():
        entry = arch.energy[key]
        assert entry.per == per, key
        assert entry.pj == pytest.approx(pj, rel=rel), key
        assert "§" in entry.source, key  # every number says where in the sheet it comes from


def test_unsourced_numbers_say_so() -> None:
    for key in ("global_buffer.read", "global_buffer.write"):
        assert FLAT_EDGE.energy[key].source.startswith("NOT IN THE FACT SHEET")
    assert FLAT_EDGE.area["global_buffer.sram"].source.startswith("NOT IN THE FACT SHEET")


# ------------------------------------------------------------------------------------- energy of actions


def test_each_unit_converts_as_the_artifact_charges() -> None:
    actions = {"pe2d.mac": 1000, "pe1d.div": 3, "pe1d.register_file.write": 10,
               "global_buffer.read": 256 * 3, "global_buffer.write": 128, "dram.read": 8 * 5, "dram.write": 4}
    expected = {"pe2d.mac": 1000 * MAC, "pe1d.div": 3 * DIV, "pe1d.register_file.write": 10 * RF_WRITE,
                "global_buffer.read": 3 * GLB_16MB[0],        # 256 words = one 512-byte row
                "global_buffer.write": 0.5 * GLB_16MB[1],
                "dram.read": 5 * DRAM_PER_64_BITS,            # 8 bytes = one 64-bit access
                "dram.write": 0.5 * DRAM_PER_64_BITS}
    breakdown = energy_breakdown_pj(FUSEMAX, actions)
    assert breakdown.keys() == expected.keys()
    for key, pj in expected.items():
        assert breakdown[key] == pytest.approx(pj, rel=1e-12), key
    assert energy_pj(FUSEMAX, actions) == pytest.approx(sum(expected.values()), rel=1e-12)


@pytest.mark.parametrize(("B", "H", "M", "E"), [(64, 12, 1024, 64), (64, 16, 65536, 64), (2, 1, 256, 128)])
def test_fusemax_energy_model_of_section_6_4(B: int, H: int, M: int, E: int) -> None:
    """The sheet's §6.4 FuseMax energy formula, from action counts in natural units."""
    F, P = E, M
    M1 = M // 256
    P2 = max(1, P // 4096)
    N, n1 = B * H * M * P, B * H * M1 * P
    Q, AV, K, V = B * H * E * P, B * H * F * P, B * H * E * M, B * H * F * M  # words
    glb_read_words = n1 * E + n1 * E + n1 * F + n1 + n1 + n1 * F + B * H * F * P + B * H * P
    glb_write_words = B * H * E * P + B * H * M * (E + F) * P2 + n1 + n1 + n1 * F
    actions = {
        "pe2d.mac": N * (E + F), "pe2d.exp": N, "pe2d.add": N, "pe2d.max": N,
        "pe1d.max": n1, "pe1d.exp": n1, "pe1d.mac": n1 + n1 * F, "pe1d.add": n1 + n1 * F,
        "pe1d.div": B * H * F * P,
        "dram.read": 2 * (Q + (K + V) * P2), "dram.write": 2 * AV,
        "global_buffer.read": glb_read_words, "global_buffer.write": glb_write_words,
        "pe1d.register_file.write": 3 * n1 + n1 * F,
    }
    expected_pj = (
        N * (E + F) * MAC + N * (6 * MAC + ADD) + N * ADD + N * MAX
        + n1 * (MAX + (6 * MAC + ADD) + MAC + ADD) + n1 * F * (MAC + ADD) + B * H * F * P * DIV
        + (Q + AV + (K + V) * P2) / 4 * 249.6
        + glb_read_words / 256 * 12512.76 + glb_write_words / 256 * 15751.46
        + (3 * n1 + n1 * F) * 1.906)
    assert energy_pj(FUSEMAX, actions) == pytest.approx(expected_pj, rel=1e-12)


def test_flat_energy_model_of_section_6_4() -> None:
    """The sheet's §6.4 FLAT energy formula at BERT-1K (traffic 1.30862e9 B, §4.5)."""
    B, H, M, E = 64, 12, 1024, 64
    F, P = E, M
    N = B * H * M * P
    traffic_bytes = 1.30862e9
    actions = {"pe2d.mac": N * (E + F), "pe1d.max": N, "pe1d.add": 2 * N, "pe1d.exp": N, "pe1d.div": N,
               "dram.read": 0.75 * traffic_bytes, "dram.write": 0.25 * traffic_bytes,
               "global_buffer.read": 4 * N, "global_buffer.write": 3 * N}
    expected_pj = (N * (E + F) * 17.1645 + N * (0.028036 + 8.3395 + 94.6475 + 8.3395 + 36.251153)
                   + traffic_bytes / 8 * 249.6 + 4 * N / 256 * 23854.6 + 3 * N / 256 * 27097.5)
    assert energy_pj(FLAT, actions) == pytest.approx(expected_pj, rel=1e-12)


def test_action_without_energy_entry_is_named() -> None:
    with pytest.raises(SpecError) as info:
        energy_pj(FLAT, {"pe2d.mac": 1, "pe2d.max": 5})  # FLAT's 2D PEs have no max unit
    message = str(info.value)
    assert message.startswith("specs/arch/flat-cloud.yaml: energy: no entry for action 'pe2d.max' (known: ")
    assert "\n" not in message


@pytest.mark.parametrize("count", [-1, float("nan"), float("inf"), "3", True])
def test_bad_action_counts_are_rejected(count: object) -> None:
    with pytest.raises(SpecError, match=r"^action 'dram\.read': expected a count >= 0, got "):
        energy_pj(FUSEMAX, {"dram.read": count})  # type: ignore[dict-item]


def test_no_actions_cost_nothing() -> None:
    assert energy_pj(FUSEMAX, {}) == 0.0
    assert energy_breakdown_pj(FUSEMAX, {}) == {}


ACTION_KEYS = sorted(FUSEMAX.energy)
counts = st.dictionaries(st.sampled_from(ACTION_KEYS), st.integers(min_value=0, max_value=10**12), max_size=8)


@settings(max_examples=60, deadline=None)
@given(first=counts, second=counts)
def test_energy_is_additive_over_action_counts(first: dict[str, int], second: dict[str, int]) -> None:
    merged = {key: first.get(key, 0) + second.get(key, 0) for key in first.keys() | second.keys()}
    assert energy_pj(FUSEMAX, merged) == pytest.approx(
        energy_pj(FUSEMAX, first) + energy_pj(FUSEMAX, second), rel=1e-12, abs=1e-9)
    assert energy_pj(FUSEMAX, merged) >= 0.0


# --------------------------------------------------------------------------------------------------- area

# Per-instance um^2 from the sheet's §3.6 iso-area table (max 49.29 from §3.5); the add is part of the MAC.
RF_FLAT_2D, RF_FLAT_1D, RF_FM_2D, RF_FM_1D = 16814, 16837, 16838, 16849
MAC_UM2, MAX_UM2, EXP_UM2, DIV_UM2 = 1545, 49.29, 8240, 23740.94
FLAT_PE2D_UM2 = RF_FLAT_2D + MAC_UM2
FLAT_PE1D_UM2 = RF_FLAT_1D + MAX_UM2 + MAC_UM2 + EXP_UM2 + DIV_UM2
FM_PE2D_UM2 = RF_FM_2D + MAC_UM2 + MAX_UM2
FM_PE1D_UM2 = RF_FM_1D + MAX_UM2 + MAC_UM2 + DIV_UM2
FLAT_GLB_UM2, FM_GLB_UM2 = 175.72e6, 84.20e6


def _chip_mm2(pes_2d: int, pe2d_um2: float, pes_1d: int, pe1d_um2: float, glb_um2: float) -> float:
    return (pes_2d * pe2d_um2 + pes_1d * pe1d_um2 + glb_um2) / 1e6


def test_area_totals_reproduce_the_iso_area_check() -> None:
    flat_mm2 = _chip_mm2(65536, FLAT_PE2D_UM2, 256, FLAT_PE1D_UM2, FLAT_GLB_UM2)
    fusemax_mm2 = _chip_mm2(65536, FM_PE2D_UM2, 256, FM_PE1D_UM2, FM_GLB_UM2)
    assert area_mm2(FLAT) == pytest.approx(flat_mm2, rel=1e-12)
    assert area_mm2(FUSEMAX) == pytest.approx(fusemax_mm2, rel=1e-12)
    assert area_mm2(FLAT) == pytest.approx(1391.8, abs=0.1)      # sheet §3.6: ~1391.8 mm^2
    assert area_mm2(FUSEMAX) == pytest.approx(1302.9, abs=0.1)   # sheet §3.6: ~1302.9 mm^2
    assert area_mm2(FUSEMAX) / area_mm2(FLAT) == pytest.approx(0.936, abs=0.002)  # paper: 6.4% smaller


def test_area_breakdown_by_part() -> None:
    fm = area_breakdown_um2(FUSEMAX)
    assert "pe2d.add" not in fm and "pe1d.add" not in fm  # counted in the MAC (sheet §3.6)
    assert FUSEMAX.area["pe2d.add"].counted_in == "pe2d.mac"
    fm_2d = sum(um2 for key, um2 in fm.items() if key.startswith("pe2d."))
    assert fm_2d == pytest.approx(1_207_951_210, rel=1e-4)  # pareto.csv array_2d_area at PE 256 (§3.6)
    assert fm["global_buffer.sram"] == FM_GLB_UM2
    assert fm["pe1d.div"] == pytest.approx(256 * DIV_UM2)
    flat = area_breakdown_um2(FLAT)
    assert flat["pe1d.exp"] == pytest.approx(256 * EXP_UM2)
    assert sum(um2 for key, um2 in flat.items() if key.startswith("pe2d.")) == pytest.approx(1203.2e6, rel=1e-4)
    assert sum(um2 for key, um2 in flat.items() if key.startswith("pe1d.")) == pytest.approx(12.9e6, rel=1e-2)


def test_edge_area_follows_its_stated_method() -> None:
    glb_um2 = _edge_glb_pj(26.2e6, 84.20e6)  # same power law, applied to the sheet's areas
    assert FLAT_EDGE.area["global_buffer.sram"].um2 == pytest.approx(glb_um2, rel=1e-3)
    assert area_mm2(FLAT_EDGE) == pytest.approx(
        _chip_mm2(32 * 32, FLAT_PE2D_UM2, 32, FLAT_PE1D_UM2, FLAT_EDGE.area["global_buffer.sram"].um2),
        rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(min_value=1, max_value=512), cols=st.integers(min_value=1, max_value=512),
       size=st.integers(min_value=1, max_value=512))
def test_area_scales_with_the_array_sizes(rows: int, cols: int, size: int) -> None:
    arch = FUSEMAX.with_overrides({"arrays.pe2d.rows": rows, "arrays.pe2d.cols": cols,
                                   "arrays.pe1d.size": size})
    assert area_mm2(arch) == pytest.approx(
        _chip_mm2(rows * cols, FM_PE2D_UM2, size, FM_PE1D_UM2, FM_GLB_UM2), rel=1e-12)
