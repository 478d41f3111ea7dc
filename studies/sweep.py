"""Running a study: evaluate its points in parallel and commit each result to the store as it arrives.

Where points run:

- on local cores: a :class:`studies.executor.LocalPool` of ``workers`` spawned processes (also for
  ``workers=1``: a point that kills its process never takes the sweep with it). A worker that dies is
  replaced and its point evaluated once more; a point over its wall-clock limit is stored as failed;
  workers exit when the sweep's process dies;
- with ``scheduler="tcp://host:port"``: on an existing Dask cluster, through a
  ``dask.distributed.Client`` (its workers need attnsim installed, and the point kind's module). The
  sweep waits up to ``scheduler_timeout_s`` for the scheduler and for a first worker, saying so.

Whatever runs them, the parent process writes every result into ``DIR/results.sqlite`` as it arrives
(one committed transaction per point). A point is a pure function of its resolved JSON
(:mod:`studies.points`), so results do not depend on the worker count or the scheduler. Points already
in the store are skipped: finished ones always, failed ones unless ``retry_failed``. One sweep at a
time writes a directory: a second one on the same ``out_dir`` stops with a one-line message
(``DIR/.sweep.lock``, an advisory ``flock`` released when its holder exits, however it exits).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnsim.studies.errors import UsageError
from attnsim.studies.executor import LocalPool, RetriedPoint, failure_outcome
from attnsim.studies.points import PointKind, ResolvedPoint, evaluate_point, get_kind, resolve_points
from attnsim.studies.outputs import output_dir
from attnsim.studies.store import DATABASE_NAME, ResultStore
from attnsim.studies.study import Study, load_study

__all__ = ["FailedPoint", "RetriedPoint", "SweepSummary", "connect", "run_sweep",
           "DEFAULT_SCHEDULER_TIMEOUT_S", "LOCK_NAME"]

Outcome = dict[str, Any]

DEFAULT_SCHEDULER_TIMEOUT_S = 30.0
"""How long a sweep waits for a Dask scheduler to answer, and then for its first worker (seconds)."""
LOCK_NAME = ".sweep.lock"


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
        retried: points evaluated a second time because their worker process died.
    """

    study: str
    out_dir: Path
    total: int
    skipped: int
    ran: int
    ok: int
    failed: list[FailedPoint] = field(default_factory=list)
    retried: list[RetriedPoint] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every point of the study is ok, 1 if any failed."""
        return 1 if self.failed else 0


# --------------------------------------------------------------------------------------------------
# Executors: each yields (point, outcome) as points finish.


def connect(address: str, timeout_s: float = DEFAULT_SCHEDULER_TIMEOUT_S, quiet: bool = False) -> Any:
    """A ``dask.distributed.Client`` of the scheduler at ``address`` that has at least one worker.

    Prints a line on stderr while it waits. Raises UsageError (one line) for an address that is not
    ``SCHEME://host:port``, a scheduler that does not answer within ``timeout_s`` seconds (nothing
    listening, or a server that is not a Dask scheduler), or one with no worker after ``timeout_s`` more.
    """
    try:
        from distributed import Client
        from distributed.comm.addressing import parse_address, parse_host_port
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
    if scheme in ("tcp", "tls", "ws", "wss"):
        try:
            parse_host_port(location)
        except ValueError:
            raise UsageError(f"--scheduler {address}: expected {scheme}://host:port (no port given; "
                             "a Dask scheduler listens on 8786 by default)") from None
    if not timeout_s > 0:
        raise UsageError(f"--scheduler-timeout: expected a positive number of seconds, got {timeout_s}")
    _say(quiet, f"attnsim: connecting to the Dask scheduler at {address} (up to {timeout_s:g} s)")
    try:
        client = _client(Client, address, timeout_s)
    except (OSError, TimeoutError, ValueError) as exc:
        text = " ".join(str(exc).split())
        raise UsageError(f"--scheduler {address}: no Dask scheduler there ({text or type(exc).__name__}); "
                         "is `dask scheduler` running at that address? (--scheduler-timeout "
                         f"{timeout_s:g} s bounds the wait)") from None
    try:
        if not client.scheduler_info().get("workers"):
            _say(quiet, f"attnsim: waiting for a Dask worker to join {address} (up to {timeout_s:g} s; "
                        f"start one with `dask worker {address}`)")
            client.wait_for_workers(1, timeout=timeout_s)
    except (OSError, TimeoutError) as exc:
        client.close()
        text = " ".join(str(exc).split())
        raise UsageError(f"--scheduler {address}: no Dask worker joined within {timeout_s:g} s "
                         f"({text or type(exc).__name__}); start workers with `dask worker {address}` "
                         "(--scheduler-timeout sets the wait)") from None
    return client


def _probe(address: str, timeout_s: float) -> None:
    """Ask the server at ``address`` who it is (bounded by ``timeout_s``); OSError unless a scheduler.

    Done before making a ``Client``: one that fails half-way (a server that is not Dask's may send
    anything, e.g. a frame length of exabytes) leaves tracebacks behind when it is garbage-collected.
    """
    import asyncio

    from distributed.core import rpc

    async def identity() -> Any:
        async with rpc(address, timeout=timeout_s) as remote:
            return await remote.identity()

    answer: dict[str, Any] = {}

    def ask() -> None:  # on a thread of its own: no event loop of the caller's is touched
        try:
            answer["info"] = asyncio.run(asyncio.wait_for(identity(), timeout_s))
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the caller's thread
            answer["error"] = exc

    thread = threading.Thread(target=ask, name="attnsim-dask-probe", daemon=True)
    thread.start()
    thread.join(timeout_s + 5.0)
    try:
        if thread.is_alive():
            raise TimeoutError
        if "error" in answer:
            raise answer["error"]
        info = answer["info"]
    except (asyncio.TimeoutError, TimeoutError) as exc:
        raise OSError(f"timed out after {timeout_s:g} s") from exc
    except Exception as exc:  # noqa: BLE001 -- whatever a stranger's reply makes the protocol raise
        text = " ".join(str(exc).split())[:200]
        raise OSError(f"{type(exc).__name__}: {text}" if text else type(exc).__name__) from exc
    if not isinstance(info, dict) or info.get("type") != "Scheduler":
        shown = info.get("type") if isinstance(info, dict) else type(info).__name__
        raise OSError(f"the server there is not a Dask scheduler (it says {shown!r})")


def _client(client_type: Any, address: str, timeout_s: float) -> Any:
    """``Client(address)`` of a server that :func:`_probe` found to be a scheduler."""
    _probe(address, timeout_s)
    return client_type(address, timeout=f"{timeout_s}s", set_as_default=False)


def _say(quiet: bool, line: str) -> None:
    if not quiet:
        print(line, file=sys.stderr, flush=True)


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
                text = " ".join(str(exc).split())
                outcome = failure_outcome(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
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


@contextlib.contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    """Hold ``directory/.sweep.lock`` (``flock``, exclusive, never waits); UsageError if another holds it.

    The kernel drops the lock when its holder exits, even by SIGKILL: a stale lock file is harmless.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover -- no flock (Windows): one sweep per directory is on you
        yield
        return
    path = directory / LOCK_NAME
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 -- held for the whole sweep
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise UsageError(f"{directory}: another sweep (pid {holder}) is writing this directory; "
                             "wait for it to finish (re-run then to pick up what is left) or use "
                             "another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt (in the main thread), so the sweep stops its workers first."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_sweep(study: Study | str | Path, out_dir: str | Path | None = None, *, workers: int | None = None,
              scheduler: str | None = None, quiet: bool = False, retry_failed: bool = False,
              point_timeout_s: float | None = None,
              scheduler_timeout_s: float = DEFAULT_SCHEDULER_TIMEOUT_S) -> SweepSummary:
    """Evaluate every point of ``study`` not yet in ``out_dir/results.sqlite`` and record it there.

    Args:
        study: a :class:`Study` or the path of a study YAML file.
        out_dir: output directory (default ``out/<study name>``); created; the study file is copied in.
        workers: local worker processes (default ``os.cpu_count()``); ignored with ``scheduler``.
        scheduler: address of a Dask scheduler (``tcp://host:port``) to run the points on.
        quiet: no progress bar (nor the Dask waiting lines).
        retry_failed: evaluate again the points stored with status error.
        point_timeout_s: wall-clock limit of one point in seconds, local workers only (default: the
            study's ``point_timeout_s``); a point over it is stored as failed.
        scheduler_timeout_s: how long to wait for the Dask scheduler, then for its first worker.

    Raises:
        UsageError: the study is invalid, ``workers`` < 1, the scheduler cannot be reached or has no
            worker, or another sweep is writing ``out_dir``.
    """
    if not isinstance(study, Study):
        study = load_study(study)
    if workers is not None and workers < 1:
        raise UsageError(f"--workers: expected a positive integer, got {workers}")
    if point_timeout_s is None:
        point_timeout_s = study.spec.point_timeout_s
    if point_timeout_s is not None and not point_timeout_s > 0:
        raise UsageError(f"--point-timeout: expected a positive number of seconds, got {point_timeout_s}")
    points = _unique(resolve_points(study))
    kind = get_kind(study.spec.kind)
    client = connect(scheduler, scheduler_timeout_s, quiet) if scheduler else None
    try:
        with _terminate_as_interrupt():
            return _sweep(study, points, kind, out_dir, workers, client, quiet, retry_failed,
                          point_timeout_s)
    finally:
        if client is not None:
            client.close()


def _sweep(study: Study, points: list[ResolvedPoint], kind: PointKind, out_dir: str | Path | None,
           workers: int | None, client: Any, quiet: bool, retry_failed: bool,
           point_timeout_s: float | None) -> SweepSummary:
    if out_dir is not None and str(out_dir) == "":
        raise UsageError("--out: expected a directory name, got an empty one")
    directory = output_dir("--out", Path(out_dir) if out_dir is not None else Path("out") / study.name)
    if (directory / DATABASE_NAME).exists() and not (directory / DATABASE_NAME).is_file():
        raise UsageError(f"--out {directory}: {DATABASE_NAME} there is not a file")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {directory}: cannot create the directory ({exc.strerror or exc})") from None
    with _directory_lock(directory), ResultStore.in_directory(directory) as store:
        _copy_study(study, directory)
        stored = store.statuses()
        todo = [p for p in points if p.key not in stored
                or (retry_failed and stored[p.key] == "error")]
        pool = None
        if client is not None:
            outcomes = _run_dask(kind, todo, client)
        else:
            pool = LocalPool(kind, min(workers or os.cpu_count() or 1, max(1, len(todo))), point_timeout_s)
            outcomes = pool.run(todo)
        try:
            with _progress(len(points), len(points) - len(todo), quiet, study.name) as bar:
                failed_now = 0
                for point, outcome in outcomes:
                    store.record(key=point.key, study=study.name, kind=study.spec.kind,
                                 point_index=point.index, params=point.params,
                                 point_json=point.point_json, status=outcome["status"],
                                 result_json=outcome["result_json"], error=outcome["error"],
                                 started_at=outcome["started_at"], finished_at=outcome["finished_at"],
                                 wall_s=outcome["wall_s"])
                    failed_now += outcome["status"] == "error"
                    bar.update(1)
                    if failed_now:
                        bar.set_postfix(failed=failed_now, refresh=False)
        finally:
            close = getattr(outcomes, "close", None)
            if close is not None:
                close()
            if pool is not None:
                pool.close()
        records = store.records(p.key for p in points)
    failed = [FailedPoint(r.key, r.params, r.error or "") for r in records if r.status == "error"]
    return SweepSummary(study=study.name, out_dir=directory, total=len(points),
                        skipped=len(points) - len(todo), ran=len(todo),
                        ok=sum(r.status == "ok" for r in records), failed=failed,
                        retried=list(pool.retried) if pool is not None else [])
