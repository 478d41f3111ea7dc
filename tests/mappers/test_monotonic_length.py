"""unfused and FLAT at any length: ceil-division tiles and balanced row blocks make latency and DRAM
traffic non-decreasing in the sequence length (a longer sequence never maps to fewer padded rows).
Random pairs of lengths that are not multiples of the array, away from FLAT's table (whose rows come from
FLAT's own search at twelve lengths, not from the rule), plus the brief's pair 882944 < 889600 (a length
with few divisors next to one with many: a divisor rule would re-read K thousands of times at the first)."""
from __future__ import annotations

import random

import pytest

from attnsim.archsim.engine import run
from attnsim.archsim.spec import load_arch
from attnsim.mappers.designs import MapOptions, mapper
from attnsim.mappers.flat_config import load_flat_table
from attnsim.mappers.workloads import load_workload

ARCH = load_arch("flat-cloud")
TABLE_SEQS = set(load_flat_table().seq_lengths("e64"))
_rng = random.Random(14)
PAIRS = [(882944, 889600)]
while len(PAIRS) < 12:
    a, b = sorted(_rng.sample(range(300, 1 << 20), 2))
    if not {a, b} & TABLE_SEQS:
        PAIRS.append((a, b))


def _point(design: str, model: str, seq: int) -> tuple[float, float]:
    workload = load_workload(model).model_copy(update={"batch": 1, "heads": 1})
    result = run(mapper(design)(workload, seq, ARCH, options=MapOptions(closed_form=True)).schedule, ARCH)
    return result.latency_s, result.traffic_bytes


@pytest.mark.parametrize("design", ["unfused", "flat"])
@pytest.mark.parametrize("model", ["bert-base", "xlm"])
@pytest.mark.parametrize("shorter, longer", PAIRS)
def test_latency_and_traffic_do_not_decrease_with_length(design: str, model: str, shorter: int, longer: int) -> None:
    low, high = _point(design, model, shorter), _point(design, model, longer)
    assert high[0] >= low[0] and high[1] >= low[1], (low, high)
