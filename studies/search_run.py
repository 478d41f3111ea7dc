"""Running a mapping search (:mod:`mappers.search`) here, on local worker processes or on a Dask cluster,
with a progress bar: the studies-layer glue (mappers never import studies).

:func:`run_search` builds the problem, hands the search an evaluator (None: this process; ``workers``
> 1: a :class:`studies.executor.LocalPool` of spawned processes; ``scheduler``: the Dask cluster of
sweeps), and shows a tqdm bar of the candidates decided. Each evaluation is a pure function of the
mapping's data and the point (:func:`evaluate_mapping_point`), so results do not depend on where they
ran.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from attnsim.studies.points import PointKind, ResolvedPoint, canonical_json, point_key

__all__ = ["SEARCH_KIND", "evaluate_mapping_point", "run_search"]


def evaluate_mapping_point(point: dict[str, Any]) -> dict[str, Any]:
    """One mapping of a search, mapped and run: ``point = {"params": {cascade, model, seq, mapping},
    "arch": {...}}`` -> the :class:`mappers.search.model.Evaluation` as JSON."""
    from attnsim.archsim.spec import Arch
    from attnsim.mappers.cascade_mapper import load_cascade_arg
    from attnsim.mappers.mapping_spec import mapping_from_data
    from attnsim.mappers.search.model import evaluate_mapping
    from attnsim.mappers.workloads import load_workload

    params = point["params"]
    arch = Arch.from_mapping(point["arch"], origin=f"<{point['arch'].get('name', 'arch')}>")
    mapping = mapping_from_data(params["mapping"], "<searched mapping>")
    return evaluate_mapping(load_cascade_arg(params["cascade"]), mapping, load_workload(params["model"]),
                            params["seq"], arch).to_json()


SEARCH_KIND = PointKind(name="search-mapping", evaluate=evaluate_mapping_point,
                        description="one mapping of a mapping search (internal)")


def _evaluator(cascade: str, model: str, seq: int, arch: Any, workers: int, client: Any):  # type: ignore[no-untyped-def]
    """An evaluator for :func:`mappers.search.driver.search`: batches of mapping data -> evaluations."""
    from attnsim.mappers.search.model import Evaluation
    from attnsim.studies.executor import LocalPool

    arch_json = arch.model_dump(mode="json")
    pool = LocalPool(SEARCH_KIND, workers) if client is None else None

    def points(batch: Sequence[dict[str, Any]]) -> list[ResolvedPoint]:
        resolved = []
        for index, data in enumerate(batch):
            payload = {"kind": SEARCH_KIND.name, "params": {"cascade": cascade, "model": model, "seq": seq,
                                                            "mapping": data}, "arch": arch_json}
            resolved.append(ResolvedPoint(index, point_key(payload), {}, canonical_json(payload)))
        return resolved

    def outcome_of(outcome: dict[str, Any]) -> Evaluation | str:
        if outcome["status"] != "ok":
            return outcome["error"] or "failed"
        return Evaluation(**json.loads(outcome["result_json"]))

    def evaluate(batch: Sequence[dict[str, Any]]) -> list[Evaluation | str]:
        resolved = points(batch)
        results: list[Evaluation | str] = ["not evaluated"] * len(resolved)
        if client is not None:
            from attnsim.studies.sweep import _run_dask
            stream = _run_dask(SEARCH_KIND, resolved, client)
        else:
            stream = pool.run(resolved, keep_workers=True)   # type: ignore[union-attr]
        for point, outcome in stream:
            results[point.index] = outcome_of(outcome)
        return results

    return evaluate, pool


def run_search(cascade: str, model: str, seq: int, arch: str, *, base: str | None = None, objective: str = "latency",
               budget_s: float | None = None, workers: int = 1, scheduler: str | None = None,
               quiet: bool = False, overrides: dict[str, object] | None = None) -> Any:
    """Search the mappings of ``cascade`` for ``model`` at ``seq`` on ``arch`` (names or paths) and return
    the :class:`mappers.search.driver.SearchResult`. ``base``: the mapping whose policy candidates keep
    (charge, drains, placement of inputs/outputs/state) and which is evaluated first."""
    from tqdm import tqdm

    from attnsim.archsim.spec import load_arch
    from attnsim.mappers.cascade_mapper import load_cascade_arg
    from attnsim.mappers.mapping_spec import load_mapping
    from attnsim.mappers.search.driver import search
    from attnsim.mappers.search.mapspace import make_problem
    from attnsim.mappers.workloads import load_workload
    from attnsim.studies.errors import UsageError

    if workers < 1:
        raise UsageError(f"--workers: expected a positive integer, got {workers}")
    if budget_s is not None and not budget_s > 0:
        raise UsageError(f"--budget-s: expected a positive number of seconds, got {budget_s}")
    arch_spec = load_arch(arch, overrides)
    workload = load_workload(model)
    cascade_spec = load_cascade_arg(cascade)
    base_spec = load_mapping(base) if base else None
    from attnsim.mappers.search.groups_search import search_groups_point, uses_groups

    if uses_groups(cascade_spec, base_spec):   # the multi-pass groups path (engine runs are milliseconds)
        return search_groups_point(cascade_spec, workload, seq, arch_spec, base_spec, objective, budget_s)
    problem = make_problem(cascade_spec, workload, seq, arch_spec, base_spec)
    client = None
    if scheduler:
        from attnsim.studies.sweep import connect
        client = connect(scheduler, quiet=quiet)
    evaluator, pool = (None, None)
    if client is not None or workers > 1:
        evaluator, pool = _evaluator(cascade, model, seq, arch_spec, workers, client)
    bar = tqdm(total=1, unit="candidate", desc=f"search {problem.cascade.name}", disable=quiet, file=sys.stderr,
               dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        return search(problem, objective, budget_s, evaluator=evaluator, batch=max(1, 8 * workers) if evaluator else 1,
                      progress=progress)
    finally:
        bar.close()
        if pool is not None:
            pool.close()
        if client is not None:
            client.close()
