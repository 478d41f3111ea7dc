"""The engine's list-scheduling fast path (affine jumps, ``archsim.engine._ListScheduler``) against the
event engine (``fast=False``, the path that predates the fast path, unchanged) simulating in full with no
extrapolation: identical cycles, actions, busy
and per-Einsum cycles and utilisation, bit for bit, on random programs and on drifting pipelines."""
from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings

from attnsim.archsim.engine import run
from attnsim.archsim.schedule import Block, Operation, Schedule, ScheduleError

from test_engine import random_nested_schedules, random_schedules  # noqa: E402


def op(op_id: str, unit: str, cycles: int, *deps) -> Operation:
    return Operation(id=op_id, unit=unit, duration_cycles=cycles, deps=tuple(deps), actions={"x.op": 1})


def outcome(result):
    return (result.cycles, result.actions, result.busy_cycles, result.per_einsum, result.utilisation,
            result.traffic_bytes)


def same_as_full_reference(schedule: Schedule) -> None:
    try:
        expected = outcome(run(schedule, fast=False, extrapolate=False, max_simulated_ops=None))
    except ScheduleError:
        with pytest.raises(ScheduleError):
            run(schedule)
        return
    assert outcome(run(schedule)) == expected
    assert outcome(run(schedule, fast=False)) == expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_schedules(with_buffers=False, max_lanes=1))
def test_fast_path_equals_full_simulation_on_flat_programs(schedule):
    same_as_full_reference(schedule)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_nested_schedules(with_buffers=False, max_lanes=1))
def test_fast_path_equals_full_simulation_on_nests(schedule):
    same_as_full_reference(schedule)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_nested_schedules())
def test_schedules_off_the_fast_path_are_unchanged(schedule):
    same_as_full_reference(schedule)


def drifting_nest(heads: int, tiles: int, fast: int, slow: int, tail: int) -> Schedule:
    """The search's slow case in miniature: per head a producer (rate ``fast``) feeds a consumer (rate
    ``slow``, + ``tail`` on the last tile), so the consumer's lag grows or shrinks by a cycle per tile."""
    body = Block((op("p", "a", fast, ("prev", "p")), op("c", "b", slow, "p")), tiles, "tiles")
    last = Block((op("p", "a", fast), op("c", "b", slow + tail, "p"), op("w", "d", 3, "c")), 1, "last")
    return Schedule(blocks=(Block((op("q", "d", 5), body, last), heads, "heads"),))


@pytest.mark.parametrize("heads, tiles, fast, slow, tail", [
    (6, 200, 138, 137, 64), (5, 300, 137, 138, 0), (4, 500, 10, 9, 300), (7, 90, 5, 5, 40), (3, 1000, 1, 2, 0)])
def test_drifting_pipelines_jump_exactly(heads, tiles, fast, slow, tail):
    schedule = drifting_nest(heads, tiles, fast, slow, tail)
    same_as_full_reference(schedule)
    assert run(schedule).simulated_ops < heads * (tiles + 1) * 3


def test_seeded_random_drifts():
    rng = random.Random(0)
    for _ in range(40):
        same_as_full_reference(drifting_nest(rng.randint(1, 6), rng.randint(4, 150), rng.randint(0, 9),
                                             rng.randint(0, 9), rng.randint(0, 30)))


def test_the_papers_120_points_are_identical_with_and_without_the_fast_path(tmp_path, monkeypatch):
    from attnsim.archsim import engine
    from attnsim.studies.cli import main

    outputs = {}
    used: list[int] = []
    original = engine._ListScheduler.run
    monkeypatch.setattr(engine._ListScheduler, "run", lambda self: used.append(1) or original(self))
    for fast in (True, False):
        used.clear()
        monkeypatch.setitem(engine.run.__kwdefaults__, "fast", fast)
        out = tmp_path / str(fast)
        # one process, so the patched default reaches every engine run
        monkeypatch.setattr("sys.argv", ["attnsim", "paper", "--out", str(out), "--workers", "1"])
        try:
            main()
        except SystemExit as done:
            assert not done.code
        outputs[fast] = {name: (out / name).read_bytes() for name in ("attention.csv", "end2end.csv")}
        assert bool(used) == fast     # the comparison is meaningful: one run used the fast path, one did not
    assert outputs[True]["attention.csv"].count(b"\n") == 121     # header + 120 points
    assert outputs[True] == outputs[False]
