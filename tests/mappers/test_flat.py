"""FLAT (specs/mappings/flat.yaml through the generic path), simulated by the engine, against the artifact's closed form (closed_forms.py), the
paper's BERT numbers (paper_data.py) and invariants."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

import closed_forms as cf
import paper_data as pd
from attnsim.archsim.engine import run
from attnsim.archsim.spec import load_arch
from attnsim.mappers.designs import MapOptions
from attnsim.mappers.errors import MappingError
from attnsim.mappers.baselines import map_flat as map_attention
from attnsim.mappers.mapping_spec import load_mapping, mapping_from_data
from attnsim.mappers.workloads import load_workload

ARCH = load_arch("flat-cloud")
MODELS = {name: load_workload(name) for name in pd.MODELS}
BERT = MODELS["bert-base"]
SMALL_SEQS = tuple(s for s in pd.SEQ_LENGTHS if s <= 65536)
LARGE_SEQS = tuple(s for s in pd.SEQ_LENGTHS if s > 65536)
MAC_PJ = 17.1645
BYTES_PER_CYCLE = 400 * 2**30 / 940e6


def simulate(workload, seq: int, closed_form: bool = False, arch=ARCH, options=None):  # type: ignore[no-untyped-def]
    mapped = map_attention(workload, seq, arch, options=options or MapOptions(closed_form=closed_form))
    return run(mapped.schedule, arch)


@pytest.mark.parametrize("seq", pd.SEQ_LENGTHS)
@pytest.mark.parametrize("model", sorted(MODELS))
def test_closed_form_mode_equals_the_oracle_exactly(model: str, seq: int) -> None:
    """max(mem, 2D, 1D): 1D-bound at <= 64K, DRAM-bound with QK and A off-chip beyond."""
    result = simulate(MODELS[model], seq, closed_form=True)
    assert abs(result.cycles - cf.flat_latency_s(pd.MODELS[model], seq) * cf.CLOCK_HZ) <= 1


@pytest.mark.parametrize("seq", LARGE_SEQS)
def test_dram_bound_traffic(seq: int) -> None:
    """Q read and AV written once, K and V re-read per block of 1024 rows, QK and A written and read."""
    assert simulate(BERT, seq).traffic_bytes == pytest.approx(
        cf.flat_dram_bound_traffic_bytes(pd.MODELS["bert-base"], seq), rel=1e-12)


@pytest.mark.parametrize("seq", pd.SEQ_LENGTHS)
def test_default_mode_adds_only_fill_and_drain(seq: int) -> None:
    closed = simulate(BERT, seq, closed_form=True)
    modelled = simulate(BERT, seq)
    assert closed.cycles <= modelled.cycles <= closed.cycles * 1.001


@pytest.mark.parametrize("seq", pd.SEQ_LENGTHS)
def test_bert_latency_within_5_percent_of_the_paper(seq: int) -> None:
    printed = pd.BERT_ATTENTION[seq]["flat_latency_s"]
    assert printed.agrees(simulate(BERT, seq).latency_s, rel=0.05)


@pytest.mark.parametrize("seq", pd.SEQ_LENGTHS)
def test_bert_utilisation(seq: int) -> None:
    """2D 0.125 (QK and AV each 0.0625, E = 64) and 1D 1.0 while 1D-bound; 0.108 / 0.865 DRAM-bound."""
    result = simulate(BERT, seq)
    assert result.utilisation["pe2d"] == pytest.approx(pd.BERT_UTIL_2D[seq]["flat"].value, abs=0.02)
    assert result.utilisation["pe1d"] == pytest.approx(pd.BERT_UTIL_1D[seq]["flat"].value, abs=0.02)
    if seq in SMALL_SEQS:
        for einsum in ("QK", "AV"):
            assert result.per_einsum[einsum]["pe2d"] / result.cycles == pytest.approx(0.0625, abs=0.001)


@pytest.mark.parametrize("seq", pd.SEQ_LENGTHS)
def test_bert_energy_within_5_percent_of_the_paper(seq: int) -> None:
    printed = pd.BERT_ATTENTION[seq]["flat_energy_j"]
    assert printed.agrees(simulate(BERT, seq).energy_pj * 1e-12, rel=0.05)


@pytest.mark.parametrize("seq", (1024, 262144))
def test_energy_is_the_sheets_flat_model(seq: int) -> None:
    """§6.4: MACs, per-score max/add/exp/add/div, 4N GLB reads and 3N writes, DRAM bytes."""
    result = simulate(BERT, seq)
    assert result.energy_pj == pytest.approx(
        cf.flat_energy_pj(pd.MODELS["bert-base"], seq, result.traffic_bytes), rel=1e-9)


def test_xlm_uses_the_array_better() -> None:
    """E = F = 128: QK and AV each keep 0.125 of the 2D array busy (sheet §4.4: 0.25 in all)."""
    result = simulate(MODELS["xlm"], 4096)
    assert result.utilisation["pe2d"] == pytest.approx(0.25, abs=0.001)


def _op_cycles(schedule, einsum: str) -> int:  # type: ignore[no-untyped-def]
    """Cycles of the first operation tagged ``einsum`` in a schedule's steady-state body."""
    def walk(items):  # type: ignore[no-untyped-def]
        for item in items:
            if hasattr(item, "items"):
                found = walk(item.items)
                if found is not None:
                    return found
            elif item.einsum == einsum:
                return item.duration_cycles
        return None
    return walk(schedule.blocks)


@pytest.mark.parametrize("stationarity, qk, av", [
    ("output", 16 * 4 * 64, 1 * 4 * 4096),     # QK: M/R x P1/C x E;  AV: F/R (ceil) x P1/C x M
    ("weight", 1 * 16 * 1024, 1 * 16 * 1024),  # QK: E/R x M/C x P1;  AV: F/R x M/C x P1
    ("input", 1 * 4 * 4096, 16 * 4 * 64),      # QK: E/R x P1/C x M;  AV: M/R x P1/C x F
])
def test_stationarity_cycles(stationarity: str, qk: int, av: int) -> None:
    """One block of 1024 query rows at M = 4096, E = F = 64 on 256 x 256: the held operand's ranks over
    the array, every other rank in time (counted by hand above)."""
    data = load_mapping("flat").to_yaml_dict()
    group = data["groups"][0]
    group.pop("table")
    group["alternatives"] = [{"traffic": {"QK": "chip", "A": "chip"}, "block_factor": 1024,
                              "spatial": {"QK": stationarity, "AV": stationarity}, "spill": 0}]
    mapping = mapping_from_data(data, "<test>")
    from attnsim.mappers.cascade_mapper import map_named

    workload = BERT.model_copy(update={"batch": 1, "heads": 1})
    mapped = map_named("attention-3pass", mapping, workload, 4096, ARCH, options=MapOptions(closed_form=True))
    assert (_op_cycles(mapped.schedule, "QK"), _op_cycles(mapped.schedule, "AV")) == (qk, av)


def test_spill_rule_when_the_table_gives_none(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A table entry without spill_fraction and QK on chip: §2.5's rule from the buffer left per row."""
    from attnsim.mappers.flat_config import MAPPINGS_DIR

    text = (MAPPINGS_DIR / "flat-cloud.yaml").read_text(encoding="utf-8")
    stated = "spill_fraction: 0.007751937984496138\n        source: \"artifact flat_validation.csv, cloud, BERT/TrXL/T5 4K\""
    assert stated in text
    path = tmp_path / "flat-test.yaml"
    path.write_text(text.replace(stated, stated.replace("0.007751937984496138", "null")), encoding="utf-8")
    arch = load_arch("flat-cloud", {"global_buffer.capacity_bytes": 1 << 21})      # 2 MB
    workload = BERT.model_copy(update={"batch": 1, "heads": 1})
    mapped = map_attention(workload, 4096, arch, options=MapOptions(extra={"flat_table": str(path)}))
    per_row = ((1 << 21) - 128 * 256 * 2) / 256                                    # Q and AV rows resident
    assert mapped.choices["groups"]["fl"]["spill_fraction"] == pytest.approx(1 - per_row / (2 * 4096))


@settings(max_examples=20, deadline=None)
@given(rows=st.sampled_from([16, 32, 64, 256]), cols=st.sampled_from([16, 64, 256]),
       pes_1d=st.sampled_from([16, 64, 256]), seq=st.sampled_from([1024, 4096, 262144]),
       heads=st.integers(1, 2), closed_form=st.booleans())
def test_invariants(rows: int, cols: int, pes_1d: int, seq: int, heads: int, closed_form: bool) -> None:
    arch = load_arch("flat-cloud", {"arrays.pe2d.rows": rows, "arrays.pe2d.cols": cols, "arrays.pe1d.size": pes_1d})
    workload = BERT.model_copy(update={"batch": 1, "heads": heads})
    result = simulate(workload, seq, closed_form, arch)
    assert result.cycles >= result.traffic_bytes / BYTES_PER_CYCLE - 1
    assert all(0.0 <= u <= 1.0 + 1e-12 for u in result.utilisation.values())
    macs = heads * seq * seq * 128
    assert result.actions["pe2d.mac"] == macs
    assert result.energy_pj >= macs * MAC_PJ
    assert result.cycles >= 4 * heads * seq * seq / pes_1d        # the softmax's 4 ops per score


def test_extrapolation_is_exact() -> None:
    workload = BERT.model_copy(update={"batch": 1, "heads": 2})
    mapped = map_attention(workload, 4096, ARCH, options=MapOptions())
    assert run(mapped.schedule, ARCH).cycles == run(mapped.schedule, ARCH, extrapolate=False).cycles


def test_point_missing_from_the_table_follows_flats_rule() -> None:
    """3072 is not in the table: FLAT's rule (the mapping's alternatives) picks the configuration; a length
    that is not a multiple of the array runs too (padded blocks), no faster than the next multiple."""
    mapped = map_attention(BERT, 3072, ARCH, options=MapOptions())
    assert mapped.choices["groups"]["fl"]["source"].endswith("groups[0].alternatives[0]")
    assert simulate(BERT, 768).latency_s <= simulate(BERT, 1000).latency_s <= simulate(BERT, 1024).latency_s


def test_unknown_table_and_option() -> None:
    with pytest.raises(MappingError, match="unknown FLAT configuration table 'nope'"):
        map_attention(BERT, 1024, ARCH, options=MapOptions(extra={"flat_table": "nope"}))
    with pytest.raises(MappingError, match="unknown option 'p1'"):
        map_attention(BERT, 1024, ARCH, options=MapOptions(extra={"p1": 3}))


def test_buffer_too_small() -> None:
    arch = load_arch("flat-cloud", {"global_buffer.capacity_bytes": 1 << 17})
    with pytest.raises(MappingError, match="more than global_buffer.capacity_bytes = 131072"):
        map_attention(BERT, 262144, arch, options=MapOptions())
