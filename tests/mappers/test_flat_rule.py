"""FLAT's rule (mappers.flat_rule) for lengths its table lacks, checked against the table
(specs/mappings/flat-cloud.yaml, fact sheet §4.5) where the rule and FLAT's search agree, and by
arithmetic written here where they need not.

Where they agree: the DRAM regime (256K, 1M: QK and A off chip, weight/weight, P1 = 1024, row) for both
model classes, and the placement and stationarity at 1K-16K. Where they do not: the table's P1 at 1K-16K
(FLAT's search also trades granularity and spill) and 64K (kept on chip with spill 0.0078); the table
stays authoritative at its six lengths.
"""
from __future__ import annotations

import pytest

from attnsim.archsim.spec import load_arch
from attnsim.mappers.errors import MappingError
from attnsim.mappers.flat_config import load_flat_table
from attnsim.mappers.flat_rule import flat_rule_config
from attnsim.mappers.workloads import load_workload
from attnsim.studies.simulate import simulate

ARCH = load_arch("flat-cloud")
TABLE = load_flat_table()


@pytest.mark.parametrize("model", ["bert-base", "xlm"])
@pytest.mark.parametrize("seq", [262144, 1048576])
def test_rule_reproduces_the_table_in_the_dram_regime(model: str, seq: int) -> None:
    workload = load_workload(model)
    rule, table = flat_rule_config(workload, seq, ARCH), TABLE.config_for(workload, seq)
    assert rule.placement == table.placement and rule.stationarity == table.stationarity
    assert (rule.granularity, rule.p1_rows) == (table.granularity, table.p1_rows)


@pytest.mark.parametrize("model", ["bert-base", "xlm"])
@pytest.mark.parametrize("seq", [1024, 4096, 16384])
def test_rule_keeps_the_scores_on_chip_where_the_table_does(model: str, seq: int) -> None:
    workload = load_workload(model)
    rule, table = flat_rule_config(workload, seq, ARCH), TABLE.config_for(workload, seq)
    assert rule.on_chip("QK") and rule.on_chip("A") and table.on_chip("QK") and table.on_chip("A")
    assert rule.stationarity == table.stationarity


@pytest.mark.parametrize("model, seq", [("bert-base", 2048), ("bert-base", 8192), ("xlm", 2048), ("t5-small", 8192)])
def test_rule_picks_the_largest_block_that_fits(model: str, seq: int) -> None:
    workload = load_workload(model)
    e, f, word, capacity = workload.head_dim_e, workload.head_dim_f, 2, 32 * 2**20
    config = flat_rule_config(workload, seq, ARCH)

    def fits(p1: int) -> bool:   # Q and AV rows, QK and A rows, two K/V tiles of 256 keys, in bytes
        return ((e + f) * p1 + 2 * seq * p1 + 2 * (e + f) * 256) * word <= capacity

    assert config.on_chip("QK") and fits(config.p1_rows) and seq % config.p1_rows == 0
    larger = [p for p in range(config.p1_rows + 256, seq + 1, 256) if seq % p == 0]
    assert not larger or not fits(larger[0])


def test_flat_runs_at_lengths_the_table_lacks() -> None:
    latency = {seq: simulate("flat", "bert-base", seq)["latency_s"] for seq in (1024, 2048, 4096)}
    assert latency[1024] < latency[2048] < latency[4096]


def test_rule_errors_are_one_line() -> None:
    with pytest.raises(MappingError, match="not divisible by arrays.pe2d.cols = 256"):
        flat_rule_config(load_workload("bert-base"), 1000, ARCH)
    tiny = load_arch("flat-cloud", {"global_buffer.capacity_bytes": 65536})
    with pytest.raises(MappingError, match="nothing fits in global_buffer.capacity_bytes = 65536"):
        flat_rule_config(load_workload("bert-base"), 2048, tiny)
