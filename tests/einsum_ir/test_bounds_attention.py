"""Every live tensor of the 1-, 2- and 3-pass attention cascades over M, with its kind, footprint,
passes, re-read traffic and spill, as FuseMax §III-B reasons them (written out here, not read from
the code): added to kill the surviving mutants of einsum_ir/bounds.py (docs/testing.md).

Shapes: M = P keys/queries, E/F head dims; P1 is the tile of the parallel rank p (queries).
- 3-pass: QK is read element by element in pass 1 (its max GM) and pass 2 (SN = exp(QK - GM)), SN in
  pass 2 (its sum SD) and pass 3 (A = SN / SD): each keeps an M-fiber per query tile (M*P1) or is
  spilled (written once, M*P, re-read once more, M*P). Q is read at every m of pass 1 (E*P1); the
  per-query summaries GM and SD at every m of the next pass (P1 each).
- 2-pass: only SLN crosses the passes (pass 1 writes it, pass 2 reads it against C); Q as above.
- 1-pass: nothing is re-read; the running max RM, sum RD and output RNV are the recurrence's state
  (P1, P1, F*P1), read in its one pass; Q as above.
"""
from __future__ import annotations

import pytest
import sympy

from attnsim.einsum_ir.bounds import live_bounds, parallel_ranks
from attnsim.einsum_ir.passes import analyze_passes

from builtin_cascades import builtin

M, P, E, F, K, P1 = sympy.symbols("M P E F K P1", positive=True, integer=True)

EXPECTED = {
    "attention-3pass": {
        ("QK", "reread"): (M * P1, (1, 2), M * P, M * P),
        ("SN", "reread"): (M * P1, (2, 3), M * P, M * P),
        ("Q", "reused"): (E * P1, (1,), None, None),
        ("GM", "reused"): (P1, (2,), None, None),
        ("SD", "reused"): (P1, (3,), None, None),
        # AV[f,p] = A[m,p] * V[f,m] reduces m inside the last pass: its F partial sums per query row
        # are live for the whole pass
        ("AV", "partial"): (F * P1, (3,), None, None),
    },
    "attention-2pass": {
        ("SLN", "reread"): (M * P1, (1, 2), M * P, M * P),
        ("Q", "reused"): (E * P1, (1,), None, None),
        ("SNV", "partial"): (F * P1, (2,), None, None),   # SN x V summed over m in pass 2: F per query row
    },
    "attention-1pass": {
        ("RM", "state"): (P1, (1,), None, None),
        ("RD", "state"): (P1, (1,), None, None),
        ("RNV", "state"): (F * P1, (1,), None, None),
        ("Q", "reused"): (E * P1, (1,), None, None),
    },
}


def same(a: sympy.Expr | None, b: sympy.Expr | None) -> bool:
    if a is None or b is None:
        return a is b
    names = {s.name: s for s in (M, P, E, F, K, P1)}
    return sympy.simplify(sympy.sympify(str(a), locals=names) - b) == 0


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_live_tensor_of_the_attention_cascades(name: str) -> None:
    analysis = analyze_passes(builtin(name), "M")
    bounds = live_bounds(analysis)
    assert parallel_ranks(analysis) == ["p"]
    assert {rank: symbol.name for rank, symbol in bounds.tiles.items()} == {"p": "P1"}
    found = {(e.tensor, e.kind): e for e in bounds.live}
    assert set(found) == set(EXPECTED[name])
    for key, (footprint, passes, reread, spill) in EXPECTED[name].items():
        entry = found[key]
        assert same(entry.footprint, footprint), (key, entry.footprint)
        assert entry.passes == passes, key
        assert same(entry.reread_traffic, reread), (key, entry.reread_traffic)
        assert same(entry.spill_write, spill), (key, entry.spill_write)
    total = sum(footprint for footprint, *_ in EXPECTED[name].values())
    assert same(bounds.total, total)
    assert bounds.depends_on("M") == (name != "attention-1pass")
    assert not bounds.depends_on("P")                     # queries are tiled: P1, never P


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_json_of_the_bounds_reads_back_as_the_same_expressions(name: str) -> None:
    bounds = live_bounds(analyze_passes(builtin(name), "M"))
    for entry, data in zip(bounds.live, bounds.to_json()):
        assert data["tensor"] == entry.tensor and data["kind"] == entry.kind
        assert data["passes"] == list(entry.passes)
        assert same(data["footprint"], entry.footprint)
        for field in ("reread_traffic", "spill_write"):
            value = getattr(entry, field)
            assert (data[field] is None) == (value is None)
            if value is not None:
                assert same(data[field], value)


def test_an_input_read_in_two_passes_is_reread_without_a_spill() -> None:
    # cascade1 (FuseMax §II-B): A is an input read in both passes over K: one more read, no write.
    bounds = live_bounds(analyze_passes(builtin("cascade1"), "K"))
    (entry,) = [e for e in bounds.live if e.kind == "reread"]
    assert entry.tensor == "A" and entry.passes == (1, 2)
    assert same(entry.reread_traffic, K) and entry.spill_write == 0


def test_bounds_are_immutable_values() -> None:
    # A mapper reads the bounds of a shared analysis; nothing may change them under another reader.
    import dataclasses

    bounds = live_bounds(analyze_passes(builtin("attention-2pass"), "M"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        bounds.total = sympy.Integer(0)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        bounds.live[0].footprint = sympy.Integer(0)  # type: ignore[misc]
