"""FLAT's rule -- the alternatives of specs/mappings/flat.yaml, the largest row block whose live tensors fit,
first with the score rows on chip, else through DRAM -- checked against FLAT's own table
(specs/mappings/flat-cloud.yaml, the artifact's configuration, fact sheet §4.5) where the rule and FLAT's
search agree, and by arithmetic written here where they need not.

Where they agree: the DRAM regime (256K, 1M: QK and A off chip, weight/weight, P1 = 1024) for both model
classes, and the placement of the score rows and the stationarity at 1K-16K. Where they do not: the table's
P1 at 1K-16K (FLAT's search also trades granularity and spill) and 64K (kept on chip with spill 0.0078, where
the rule's block of 256 rows does not fit), so the mapping takes the table's row wherever the table has one.
Which assumptions differ (FLAT counts one in-place score fibre and lets the staging spill) is derived from the
table itself in tests/mappers/test_search_groups.py and written up in docs/mapping.md.
"""
from __future__ import annotations

import math

import pytest

from attnsim.archsim.spec import load_arch
from attnsim.mappers.cascade_mapper import map_named
from attnsim.mappers.designs import MapOptions
from attnsim.mappers.errors import MappingError
from attnsim.mappers.flat_config import TENSORS, load_flat_table
from attnsim.mappers.mapping_spec import load_mapping, mapping_from_data
from attnsim.mappers.workloads import load_workload
from attnsim.studies.simulate import simulate

ARCH = load_arch("flat-cloud")
TABLE = load_flat_table()


def _rule_only():  # type: ignore[no-untyped-def]
    data = load_mapping("flat").to_yaml_dict()
    data["groups"][0].pop("table")
    return mapping_from_data(data, "<flat without its table>")


RULE = _rule_only()


def rule(model: str, seq: int, arch=ARCH) -> dict:  # type: ignore[no-untyped-def]
    """The rule's choice for the point: placement (chip/dram per tensor), stationarity, P1."""
    group = map_named("attention-3pass", RULE, load_workload(model), seq, arch, options=MapOptions()
                      ).choices["groups"]["fl"]
    placement = {t: "chip" if group["traffic"].get(t) in ("once", "chip") else "dram" for t in TENSORS}
    stationarity = {}
    for einsum, dims in group["spatial"].items():   # back to the table's words, by the held tensor's ranks
        ranks = (next(r for r, d in dims.items() if d == "rows"), next(r for r, d in dims.items() if d == "cols"))
        stationarity[einsum] = {("m", "p"): "output", ("f", "p"): "output", ("e", "m"): "weight",
                                ("f", "m"): "weight", ("e", "p"): "input"}.get(ranks, "input")
    return {"placement": placement, "stationarity": stationarity, "p1": group["block"], "source": group["source"]}


def _table(model: str, seq: int) -> dict:
    config = TABLE.config_for(load_workload(model), seq)
    return {"placement": config.placement.model_dump(), "stationarity": config.stationarity.model_dump(),
            "p1": config.p1_rows}


@pytest.mark.parametrize("model", ["bert-base", "xlm"])
@pytest.mark.parametrize("seq", [262144, 1048576])
def test_rule_reproduces_the_table_in_the_dram_regime(model: str, seq: int) -> None:
    got, table = rule(model, seq), _table(model, seq)
    assert got["placement"] == table["placement"]
    assert got["stationarity"] == table["stationarity"]
    assert got["p1"] == table["p1"] == 1024


@pytest.mark.parametrize("model", ["bert-base", "xlm"])
@pytest.mark.parametrize("seq", [1024, 4096, 16384])
def test_rule_keeps_the_scores_on_chip_where_the_table_does(model: str, seq: int) -> None:
    got, table = rule(model, seq), _table(model, seq)
    assert got["placement"]["QK"] == got["placement"]["A"] == table["placement"]["QK"] == table["placement"]["A"] == "chip"
    assert got["stationarity"] == table["stationarity"]


@pytest.mark.parametrize("model, seq", [("bert-base", 2048), ("bert-base", 8192), ("xlm", 2048), ("t5-small", 8192),
                                        ("bert-base", 3072), ("xlm", 5000)])
def test_rule_picks_the_largest_block_that_fits(model: str, seq: int) -> None:
    workload = load_workload(model)
    e, f, word, capacity = workload.head_dim_e, workload.head_dim_f, 2, 32 * 2**20

    def fits(p1: int) -> bool:   # Q and AV rows, QK and A rows, two K/V tiles of 256 keys, in bytes
        return ((e + f) * p1 + 2 * seq * p1 + 2 * (e + f) * 256) * word <= capacity

    largest = max(p for p in range(256, math.ceil(seq / 256) * 256 + 1, 256) if fits(p))
    blocks = math.ceil(seq / largest)
    balanced = math.ceil(seq / (blocks * 256)) * 256   # the same number of blocks, the least padding
    got = rule(model, seq)
    assert got["placement"]["QK"] == "chip" and got["p1"] == balanced and fits(got["p1"])


def test_flat_runs_at_lengths_the_table_lacks() -> None:
    latency = {seq: simulate("flat", "bert-base", seq)["latency_s"] for seq in (1000, 3072, 6144)}
    assert latency[1000] < latency[3072] < latency[6144]


def test_rule_errors_are_one_line() -> None:
    tiny = load_arch("flat-cloud", {"global_buffer.capacity_bytes": 65536})
    with pytest.raises(MappingError, match=r"nothing fits in global_buffer.capacity_bytes = 65536: a block of 256") as info:
        rule("bert-base", 3000, tiny)
    assert "\n" not in str(info.value)
