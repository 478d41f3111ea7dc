"""Loop nests in the engine, shaped like the FuseMax mappers' schedules: peeled first/last iterations
(sibling blocks that repeat the same operation ids), prefetches whose loop-carried dependencies fall
back across sibling blocks and outer iterations, and extrapolation at every level of the nest.

Oracles: hand-derived closed forms, and the engine's own full simulation (``extrapolate=False``, which
tests/archsim/test_engine.py checks against brute-force references): extrapolated == fully simulated,
cycle for cycle and action for action.
"""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnsim.archsim.engine import run
from attnsim.archsim.schedule import Block, Operation, Schedule, ScheduleError


def op(op_id: str, unit: str, cycles: int, *deps, **kwargs) -> Operation:  # type: ignore[no-untyped-def]
    return Operation(id=op_id, unit=unit, duration_cycles=cycles, deps=tuple(deps), **kwargs)


def outcome(schedule: Schedule, extrapolate: bool):  # type: ignore[no-untyped-def]
    try:
        result = run(schedule, extrapolate=extrapolate)
    except ScheduleError as error:
        return ("error", str(error).split(":")[0])
    return (result.cycles, result.actions, result.busy_cycles, result.per_einsum, result.utilisation)


# --------------------------------------------------------------------------------------------------
# A three-level nest with a closed form: groups > chunks > tiles, DRAM prefetching one chunk ahead.

def prefetch_nest(groups: int, chunks: int, tiles: int, a: int, b: int, load: int) -> Schedule:
    """Per tile: ``x`` (a cycles, unit A) then ``y`` (b cycles, unit B, needs x); each chunk's data is
    loaded (``load`` cycles on ``dram``) during the previous chunk, into the slot the chunk before
    freed; the prologue loads the first chunk, a group's last chunk prefetches the next group's first.
    """
    def tile_block(reps: int, name: str, *data_deps) -> Block:  # type: ignore[no-untyped-def]
        return Block((op("x", "A", a, *data_deps, einsum="X", actions={"a.op": 1}),
                      op("y", "B", b, "x", einsum="Y", actions={"b.op": 2})), reps, name)

    def group(reps: int, name: str, last: bool) -> Block:
        # a group's first chunk comes from the previous group's prefetch (lag 1 in the group loop; the
        # first group's falls back to the prologue; the last group, which has none, takes the latest)
        first_chunk = "ld_next" if last else ("prev", "ld_next")
        chunk = Block((op("ld", "dram", load, ("prev", "y"), actions={"dram.read": 8}),
                       tile_block(tiles, "tiles", ("prev", "ld"), first_chunk)), chunks - 1, "chunks")
        prefetch = () if last else (op("ld_next", "dram", load, ("prev", "y"), actions={"dram.read": 8}),)
        data = ("ld", first_chunk) if chunks > 1 else (first_chunk,)
        final = Block((*prefetch, tile_block(tiles, "tiles_last", *data)), 1, "chunk_last")
        return Block((chunk, final), reps, name)

    prologue = Block((op("ld_next", "dram", load, actions={"dram.read": 8}),), 1, "prologue")
    return Schedule(blocks=(prologue, group(groups - 1, "groups", False), group(1, "group_last", True)))


def test_prefetch_nest_closed_form_and_extrapolation_at_every_level() -> None:
    groups, chunks, tiles, a, b, load = 2000, 300, 50, 3, 5, 7
    schedule = prefetch_nest(groups, chunks, tiles, a, b, load)
    result = run(schedule)
    # B is the bottleneck (b > a) and loads hide behind a chunk's tiles: the load of the very first
    # chunk, then every tile's y back to back, the first x before the first y
    assert result.cycles == load + a + groups * chunks * tiles * b
    n = groups * chunks * tiles
    assert result.actions == {"a.op": n, "b.op": 2 * n, "dram.read": 8 * groups * chunks}
    assert result.per_einsum["Y"]["B"] == n * b
    assert schedule.op_count > 6 * 10**7
    assert result.simulated_ops < 5000     # groups, chunks and tiles all extrapolated


def test_prefetch_nest_equals_full_simulation() -> None:
    schedule = prefetch_nest(7, 6, 5, 4, 2, 9)       # here DRAM is the bottleneck of every chunk
    assert outcome(schedule, True) == outcome(schedule, False)
    result = run(schedule, extrapolate=False)
    assert result.actions["dram.read"] == 8 * 7 * 6


def test_fallback_finds_the_previous_outer_iterations_last_instance() -> None:
    """A tile's ``("prev", "y")`` in the first iteration of the inner loop waits for the last ``y``
    before the loop started: the previous chunk's last tile, across the sibling block split."""
    inner_first = Block((op("x", "A", 1, ("prev", "y")), op("y", "B", 10, "x")), 1, "first")
    inner_rest = Block((op("x", "A", 1, ("prev", "y")), op("y", "B", 10, "x")), 2, "rest")
    outer = Block((inner_first, inner_rest), 3, "outer")
    result = run(Schedule(blocks=(outer,)), trace=True)
    # every x waits for the previous y: fully serial, 11 cycles per tile, 9 tiles
    assert result.cycles == 9 * 11
    assert [row.start_cycle for row in result.timeline if row.op_id == "x"] == [11 * k for k in range(9)]


# --------------------------------------------------------------------------------------------------
# Random nests with peeled sibling blocks and cross-level loop-carried dependencies.

UNITS = ("A", "B", "dram")


@st.composite
def peeled_nests(draw):  # type: ignore[no-untyped-def]
    lanes = {unit: draw(st.integers(1, 2)) for unit in UNITS}
    capacity = draw(st.integers(2, 5))
    use_buffer = draw(st.booleans())
    counter = [0]

    def ops_for(depth: int, names_before: list[str], names_inner: list[str]) -> list[dict]:
        specs = []
        for _ in range(draw(st.integers(1, 3))):
            counter[0] += 1
            name = f"o{counter[0]}"
            deps: list = [x for x in names_before if draw(st.integers(0, 3)) == 0]
            if names_inner + [name] and draw(st.booleans()):
                deps.append(("prev", draw(st.sampled_from(names_inner + [name])), draw(st.integers(1, 2))))
            specs.append(dict(id=name, unit=draw(st.sampled_from(UNITS)), duration_cycles=draw(st.integers(0, 6)),
                              deps=tuple(deps), einsum=draw(st.sampled_from(("E1", "E2"))),
                              actions={"x.op": draw(st.integers(0, 2))}))
            names_before = names_before + [name]
        if use_buffer and draw(st.booleans()):
            i = draw(st.integers(0, len(specs) - 1))
            k = draw(st.integers(i, len(specs) - 1))
            amount = draw(st.integers(1, capacity))
            specs[i]["claims_bytes"] = {"buf": amount}
            specs[k]["releases_bytes"] = {"buf": amount}
        return specs

    def level(depth: int, before: list[str]) -> tuple[list, list[str]]:
        """Items of one iteration at ``depth``: ops, then maybe a nested loop peeled into copies."""
        head = ops_for(depth, before, [])
        names = [s["id"] for s in head]
        items: list = [Operation(**s) for s in head]
        if depth < 3:
            inner_items, inner_names = level(depth + 1, before + names)
            total = draw(st.integers(1, 9))
            peel_first, peel_last = draw(st.booleans()), draw(st.booleans())
            first = 1 if peel_first and total > 1 else 0
            last = 1 if peel_last and total - first > 1 else 0
            for reps, name in ((first, "first"), (total - first - last, "mid"), (last, "last")):
                if reps:   # the same operations (same ids) in each sibling copy
                    items.append(Block(tuple(inner_items), reps, f"L{depth + 1}{name}"))
            names += inner_names
            tail = ops_for(depth, before + names, names)   # may depend on the nest's ops, lag or not
            items += [Operation(**s) for s in tail]
            names += [s["id"] for s in tail]
        return items, names

    items, _ = level(1, [])
    outer = Block(tuple(items), draw(st.integers(1, 8)), "L1")
    return Schedule(blocks=(outer,), buffers_bytes={"buf": capacity}, lanes=lanes)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(peeled_nests())
def test_peeled_nests_extrapolated_equal_fully_simulated(schedule: Schedule) -> None:
    assert outcome(schedule, extrapolate=True) == outcome(schedule, extrapolate=False)


@settings(max_examples=25, deadline=None)
@given(groups=st.integers(1, 9), chunks=st.integers(1, 6), tiles=st.integers(1, 6), a=st.integers(0, 6),
       b=st.integers(0, 6), load=st.integers(0, 12))
def test_prefetch_nests_extrapolated_equal_fully_simulated(groups, chunks, tiles, a, b, load) -> None:  # type: ignore[no-untyped-def]
    schedule = prefetch_nest(groups, chunks, tiles, a, b, load)
    assert outcome(schedule, True) == outcome(schedule, False)


# --------------------------------------------------------------------------------------------------
# The fallback of a loop-carried dependency: the latest instance of an operation before a position.

def _instance_numbers(schedule: Schedule) -> dict[str, list[int]]:
    """Every operation's instance numbers, by unrolling the schedule in program order and numbering
    the instances 0, 1, 2, ... (the engine's numbering, docs/engine.md), independently of its offsets."""
    numbers: dict[str, list[int]] = {}
    counter = [0]

    def walk(items) -> None:  # type: ignore[no-untyped-def]
        for item in items:
            if isinstance(item, Block):
                for _ in range(item.repeats):
                    walk(item.items)
            else:
                numbers.setdefault(item.id, []).append(counter[0])
                counter[0] += 1
    walk(schedule.blocks)
    return numbers


def test_latest_instance_before_every_position_matches_the_unrolled_program() -> None:
    from attnsim.archsim.engine import _latest_before, _Program
    # three levels, operations before, between and after the inner blocks, so that the latest
    # instance is sometimes in the same iteration, sometimes the previous one, sometimes none
    inner = Block((op("c", "B", 1), op("d", "A", 1)), 3, "inner")
    middle = Block((op("b", "A", 1), inner, op("e", "B", 1)), 4, "middle")
    outer = Block((op("a", "A", 1), middle, op("f", "A", 1)), 5, "outer")
    schedule = Schedule(blocks=(Block((op("p", "A", 1),), 2, "pro"), outer))
    numbers = _instance_numbers(schedule)
    total = sum(len(v) for v in numbers.values())
    assert total == 2 + 5 * (2 + 4 * (2 + 3 * 2))   # 172 instances, counted from the nest
    program = _Program(schedule)
    for node in program.nodes:
        instances = numbers[node.op.id]
        for limit in range(total + 2):
            expected = max((g for g in instances if g < limit), default=None)
            assert _latest_before(node, limit) == expected, (node.op.id, limit)
