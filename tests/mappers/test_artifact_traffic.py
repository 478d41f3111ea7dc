"""DRAM traffic against the FuseMax artifact's results (``tests/mappers/artifact/``).

The FLAT oracle (``flat_traffic_oracle``) is derived from the artifact's model code, independently of
attnsim's mappers; here it is checked against the artifact's own numbers.
"""
from __future__ import annotations

import pytest

from artifact_data import attention_points, flat_configuration
from flat_traffic_oracle import flat_traffic_bytes

FLAT_POINTS = attention_points("flat")


@pytest.mark.parametrize("point", FLAT_POINTS, ids=lambda pt: f"{pt.model}-{pt.seq}")
def test_flat_oracle_reproduces_the_artifact(point) -> None:  # type: ignore[no-untyped-def]
    # Achieved: equal to the last printed digit of the CSV (rel. error < 1e-12); margin for float sums.
    assert flat_traffic_bytes(flat_configuration(point.model, point.seq)) == pytest.approx(
        point.traffic_bytes, rel=1e-9)
