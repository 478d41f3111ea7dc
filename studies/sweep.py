"""Running a study: evaluate its points in parallel and commit each result to the store as it arrives.

Where points run:

- one worker (``workers=1``) or a single point to run: in this process, one after the other;
- otherwise on local cores: a ``concurrent.futures.ProcessPoolExecutor`` (spawned processes);
- with ``scheduler="tcp://host:port"``: on an existing Dask cluster, through a
  ``dask.distributed.Client`` (its workers need attnsim installed, and the point kind's module).

Whatever runs them, the parent process writes every result into ``DIR/results.sqlite`` as it arrives
(one committed transaction per point). A point is a pure function of its resolved JSON
(:mod:`studies.points`), so results do not depend on the worker count or the scheduler. Points already
in the store are skipped: finished ones always, failed ones unless ``retry_failed``.
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnsim.studies.errors import UsageError
from attnsim.studies.points import PointKind, ResolvedPoint, evaluate_point, get_kind, resolve_points
from attnsim.studies.store import ResultStore
from attnsim.studies.study import Study, load_study

Outcome = dict[str, Any]


@dataclass(frozen=True)
class FailedPoint:
    """A point whose evaluation raised: its key, parameters and the one-line error."""

    key: str
    params: dict[str, Any]
    error: str


@dataclass
class SweepSummary:
    """What a sweep did.

    Attributes:
        study: the study's name. out_dir: its output directory. total: points in the study.
        skipped: points already in the store and not re-run. ran: points evaluated by this sweep.
        ok: points of the study whose stored status is ok. failed: points whose stored status is error.
    """

    study: str
    out_dir: Path
    total: int
    skipped: int
    ran: int
    ok: int
    failed: list[FailedPoint] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every point of the study is ok, 1 if any failed."""
        return 1 if self.failed else 0


def _now_iso() -> str:
    from datetime import datetime, timezone
    return datetime.now(tz=timezone.utc).isoformat(timespec="microseconds")


def _lost(error: BaseException) -> Outcome:
    """The outcome of a point whose worker never reported (died, could not be reached)."""
    stamp = _now_iso()
    text = " ".join(str(error).split())
    return {"status": "error", "result_json": None,
            "error": f"{type(error).__name__}: {text}" if text else type(error).__name__,
            "started_at": stamp, "finished_at": stamp, "wall_s": 0.0}


# --------------------------------------------------------------------------------------------------
# Executors: each yields (point, outcome) as points finish.


def _run_here(kind: PointKind, points: Sequence[ResolvedPoint]) -> Iterator[tuple[ResolvedPoint, Outcome]]:
    for point in points:
        yield point, evaluate_point(kind, point.point_json)


def _run_local(kind: PointKind, points: Sequence[ResolvedPoint], workers: int
               ) -> Iterator[tuple[ResolvedPoint, Outcome]]:
    context = multiprocessing.get_context("spawn")
    executor = ProcessPoolExecutor(max_workers=min(workers, len(points)), mp_context=context)
    try:
        pending = {executor.submit(evaluate_point, kind, point.point_json): point for point in points}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                point = pending.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 -- e.g. a worker process died
                    outcome = _lost(exc)
                yield point, outcome
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def connect(address: str) -> Any:
    """A ``dask.distributed.Client`` of the scheduler at ``address``; UsageError if it cannot be reached."""
    try:
        from distributed import Client
        from distributed.comm.addressing import parse_address
        from distributed.comm.registry import backends
    except ImportError as exc:  # pragma: no cover -- dask[distributed] is a dependency
        raise UsageError(f"--scheduler {address}: dask.distributed is not installed ({exc})") from None
    try:
        scheme, location = parse_address(address, strict=False)
    except ValueError as exc:
        raise UsageError(f"--scheduler {address}: expected tcp://host:port ({exc})") from None
    if scheme not in backends or not location:
        raise UsageError(f"--scheduler {address}: expected SCHEME://host:port with SCHEME one of "
                         f"{', '.join(sorted(backends))}")
    try:
        return Client(address, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        text = " ".join(str(exc).split())
        raise UsageError(f"--scheduler {address}: cannot connect to a Dask scheduler ({text})") from None


def _run_dask(kind: PointKind, points: Sequence[ResolvedPoint], client: Any
              ) -> Iterator[tuple[ResolvedPoint, Outcome]]:
    from distributed import as_completed

    futures: dict[Any, ResolvedPoint] = {}
    try:
        for point in points:
            future = client.submit(evaluate_point, kind, point.point_json, pure=False,
                                   key=f"attnsim-point-{point.key[:16]}-{uuid.uuid4().hex}")
            futures[future] = point
        for future in as_completed(list(futures), loop=client.loop):
            point = futures.pop(future)
            try:
                outcome = future.result()
            except Exception as exc:  # noqa: BLE001 -- a worker died, the task could not run
                outcome = _lost(exc)
            future.release()
            yield point, outcome
    finally:
        for future in futures:
            future.cancel()


# --------------------------------------------------------------------------------------------------
# The sweep.


def _copy_study(study: Study, out_dir: Path) -> None:
    target = out_dir / study.path.name
    try:
        shutil.copyfile(study.path, target)
    except shutil.SameFileError:
        pass


def _unique(points: Sequence[ResolvedPoint]) -> list[ResolvedPoint]:
    """The points with distinct keys (two spellings of the same point run once), in study order."""
    seen: set[str] = set()
    unique = []
    for point in points:
        if point.key not in seen:
            seen.add(point.key)
            unique.append(point)
    return unique


def _progress(total: int, initial: int, quiet: bool, name: str) -> Any:
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, unit="point", desc=name, disable=quiet, file=sys.stderr,
                dynamic_ncols=True, smoothing=0.1)


def run_sweep(study: Study | str | Path, out_dir: str | Path | None = None, *, workers: int | None = None,
              scheduler: str | None = None, quiet: bool = False, retry_failed: bool = False
              ) -> SweepSummary:
    """Evaluate every point of ``study`` not yet in ``out_dir/results.sqlite`` and record it there.

    Args:
        study: a :class:`Study` or the path of a study YAML file.
        out_dir: output directory (default ``out/<study name>``); created; the study file is copied in.
        workers: local worker processes (default ``os.cpu_count()``); ignored with ``scheduler``.
        scheduler: address of a Dask scheduler (``tcp://host:port``) to run the points on.
        quiet: no progress bar.
        retry_failed: evaluate again the points stored with status error.

    Raises:
        UsageError: the study is invalid, ``workers`` < 1, or the scheduler cannot be reached.
    """
    if not isinstance(study, Study):
        study = load_study(study)
    if workers is not None and workers < 1:
        raise UsageError(f"--workers: expected a positive integer, got {workers}")
    points = _unique(resolve_points(study))
    kind = get_kind(study.spec.kind)
    client = connect(scheduler) if scheduler else None
    try:
        return _sweep(study, points, kind, out_dir, workers, client, quiet, retry_failed)
    finally:
        if client is not None:
            client.close()


def _sweep(study: Study, points: list[ResolvedPoint], kind: PointKind, out_dir: str | Path | None,
           workers: int | None, client: Any, quiet: bool, retry_failed: bool) -> SweepSummary:
    directory = Path(out_dir) if out_dir is not None else Path("out") / study.name
    directory.mkdir(parents=True, exist_ok=True)
    _copy_study(study, directory)
    with ResultStore.in_directory(directory) as store:
        stored = store.statuses()
        todo = [p for p in points if p.key not in stored
                or (retry_failed and stored[p.key] == "error")]
        if client is not None:
            outcomes = _run_dask(kind, todo, client)
        elif len(todo) <= 1 or (workers or os.cpu_count() or 1) == 1:
            outcomes = _run_here(kind, todo)
        else:
            outcomes = _run_local(kind, todo, workers or os.cpu_count() or 1)
        with _progress(len(points), len(points) - len(todo), quiet, study.name) as bar:
            failed_now = 0
            for point, outcome in outcomes:
                store.record(key=point.key, study=study.name, kind=study.spec.kind,
                             point_index=point.index, params=point.params, point_json=point.point_json,
                             status=outcome["status"], result_json=outcome["result_json"],
                             error=outcome["error"], started_at=outcome["started_at"],
                             finished_at=outcome["finished_at"], wall_s=outcome["wall_s"])
                failed_now += outcome["status"] == "error"
                bar.update(1)
                if failed_now:
                    bar.set_postfix(failed=failed_now, refresh=False)
        records = store.records(p.key for p in points)
    failed = [FailedPoint(r.key, r.params, r.error or "") for r in records if r.status == "error"]
    return SweepSummary(study=study.name, out_dir=directory, total=len(points),
                        skipped=len(points) - len(todo), ran=len(todo),
                        ok=sum(r.status == "ok" for r in records), failed=failed)
