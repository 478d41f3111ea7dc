"""A local pool of worker processes that survives the death of any one of them.

``concurrent.futures.ProcessPoolExecutor`` marks the whole pool broken when one worker dies (an OOM
kill, a segfault in a compiled kernel, ``os._exit`` in a point): every pending point fails. This pool
runs each worker on its own duplex pipe and watches every worker's process sentinel, so:

- a worker that dies while evaluating a point is replaced by a new one and the point is evaluated once
  more (``retried``); if it kills its worker a second time it is recorded as failed with the worker's
  exit signal or code, and every other point goes on;
- a point running longer than ``point_timeout_s`` (wall clock) has its worker killed and is recorded
  as failed with that reason (not retried: it would take as long again);
- a worker exits when the sweep's process dies (Linux ``PR_SET_PDEATHSIG``, and on every system a
  watchdog thread that polls the parent's pid), so killing the sweep leaves no orphan computing.

Workers are ``spawn``-ed (a fresh interpreter, no inherited locks or threads). Each gets the
:class:`studies.points.PointKind` once (pickled by reference: its functions must be importable) and then
one resolved point's JSON at a time.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from attnsim.studies.points import PointKind, ResolvedPoint, evaluate_point

__all__ = ["RetriedPoint", "LocalPool", "failure_outcome", "exit_description"]

Outcome = dict[str, Any]

_PARENT_POLL_S = 0.5
"""How often a worker's watchdog checks that the sweep process still exists (seconds)."""
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class RetriedPoint:
    """A point whose worker died while evaluating it, so it was evaluated again on a new worker."""

    key: str
    params: dict[str, Any]
    reason: str


def _now_iso() -> str:
    from datetime import datetime, timezone
    return datetime.now(tz=timezone.utc).isoformat(timespec="microseconds")


def failure_outcome(error: str, wall_s: float = 0.0) -> Outcome:
    """The outcome of a point that did not report a result (worker died, time limit, unreachable)."""
    stamp = _now_iso()
    return {"status": "error", "result_json": None, "error": " ".join(error.split()),
            "started_at": stamp, "finished_at": stamp, "wall_s": float(wall_s)}


def exit_description(exitcode: int | None) -> str:
    """``killed by signal SIGKILL`` / ``exited with code 3`` for a process's ``exitcode``."""
    if exitcode is None:
        return "did not exit"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"killed by signal {name}"
    return f"exited with code {exitcode}"


# --------------------------------------------------------------------------------------------------
# The worker side.


def _die_with_parent(parent_pid: int) -> None:
    """Exit as soon as the process ``parent_pid`` is gone (no orphan keeps computing)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover -- no prctl: the watchdog still works
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watchdog() -> None:
        while True:
            time.sleep(_PARENT_POLL_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watchdog, name="attnsim-parent-watchdog", daemon=True).start()


def _worker_main(connection: Connection, parent_pid: int) -> None:
    """Receive the kind, then evaluate point after point until told to stop (None) or the pipe closes."""
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the sweep decides
    try:
        import faulthandler
        faulthandler.enable()  # a segfault in a point prints where it happened on the sweep's stderr
    except (ImportError, RuntimeError, ValueError):  # pragma: no cover -- no usable stderr
        pass
    try:
        kind: PointKind = connection.recv()
        while True:
            point_json = connection.recv()
            if point_json is None:
                return
            connection.send(evaluate_point(kind, point_json))
    except (EOFError, OSError):  # the sweep went away
        return


# --------------------------------------------------------------------------------------------------
# The parent side.


@dataclass
class _Worker:
    process: Any
    connection: Connection
    point: ResolvedPoint | None = None
    attempt: int = 0
    started: float = 0.0


class LocalPool:
    """Up to ``workers`` spawned worker processes evaluating points of one kind (module docstring).

    Args:
        kind: the point kind (its functions importable by module path).
        workers: the most worker processes at a time.
        point_timeout_s: wall-clock limit of one point, seconds (None: no limit).
    """

    def __init__(self, kind: PointKind, workers: int, point_timeout_s: float | None = None) -> None:
        self.kind = kind
        self.workers = max(1, workers)
        self.point_timeout_s = point_timeout_s
        self.retried: list[RetriedPoint] = []
        self._context = multiprocessing.get_context("spawn")
        self._live: list[_Worker] = []

    def _start_worker(self) -> _Worker:
        ours, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(target=_worker_main, args=(theirs, os.getpid()),
                                        name="attnsim-sweep-worker", daemon=True)
        process.start()
        theirs.close()
        ours.send(self.kind)
        worker = _Worker(process=process, connection=ours)
        self._live.append(worker)
        return worker

    def _discard(self, worker: _Worker, *, kill: bool) -> int | None:
        """Stop using ``worker``; with ``kill`` SIGKILL it first. Returns its exit code."""
        if worker in self._live:
            self._live.remove(worker)
        if kill and worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=10)
        exitcode = worker.process.exitcode
        if exitcode is None:  # its pipe closed but it lingers: never leave it behind
            worker.process.kill()
            worker.process.join(timeout=10)
        worker.connection.close()
        return exitcode

    def close(self) -> None:
        """Stop every worker (asked politely when idle, killed otherwise); waits for them to exit."""
        for worker in list(self._live):
            if worker.point is None:
                try:
                    worker.connection.send(None)
                except OSError:
                    pass
        deadline = time.monotonic() + 5.0
        for worker in list(self._live):
            if worker.point is None:
                worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            self._discard(worker, kill=True)

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run(self, points: Sequence[ResolvedPoint], *, keep_workers: bool = False
            ) -> Iterator[tuple[ResolvedPoint, Outcome]]:
        """Evaluate ``points``; yields (point, outcome) as each one finishes, in completion order. With
        ``keep_workers`` the idle workers stay up for the next ``run`` when this one completes (a
        mapping search evaluates batch after batch; :meth:`close` stops them)."""
        queue: deque[tuple[ResolvedPoint, int]] = deque((point, 0) for point in points)
        idle: list[_Worker] = [w for w in self._live if w.point is None]   # kept up by a previous run
        busy: list[_Worker] = []
        try:
            while queue or busy:
                while queue and len(busy) < self.workers:
                    worker = idle.pop() if idle else self._start_worker()
                    point, attempt = queue.popleft()
                    worker.point, worker.attempt, worker.started = point, attempt, time.monotonic()
                    try:
                        worker.connection.send(point.point_json)
                    except OSError:
                        pass  # it died while idle: its sentinel says so below, the point is retried
                    busy.append(worker)
                for worker in self._wait(busy):
                    busy.remove(worker)
                    point, attempt = worker.point, worker.attempt
                    assert point is not None
                    outcome = self._collect(worker, queue)
                    worker.point = None
                    if worker in self._live:
                        idle.append(worker)
                    if outcome is not None:
                        yield point, outcome
        finally:
            if not keep_workers or busy or queue:
                self.close()  # workers still in flight (an interrupt, the caller stopped) are killed

    def _wait(self, busy: list[_Worker]) -> list[_Worker]:
        """The busy workers that answered, died or ran out of time (blocks until there is one)."""
        while True:
            timeout = None
            if self.point_timeout_s is not None:
                now = time.monotonic()
                timeout = max(0.0, min(w.started + self.point_timeout_s - now for w in busy))
            handles: list[Any] = [w.connection for w in busy] + [w.process.sentinel for w in busy]
            ready = set(wait(handles, timeout=timeout))
            now = time.monotonic()
            done = [w for w in busy if w.connection in ready or w.process.sentinel in ready
                    or (self.point_timeout_s is not None and now - w.started >= self.point_timeout_s)]
            if done:
                return done

    def _collect(self, worker: _Worker, queue: deque[tuple[ResolvedPoint, int]]) -> Outcome | None:
        """The outcome of ``worker``'s point, or None when the point went back on the queue."""
        point = worker.point
        assert point is not None
        elapsed = time.monotonic() - worker.started
        try:
            if worker.connection.poll():
                return worker.connection.recv()
        except (EOFError, OSError):
            pass  # it died mid-answer: handled as a death below
        over = self.point_timeout_s is not None and elapsed >= self.point_timeout_s
        if over and worker.process.is_alive():  # no answer, alive, out of time
            self._discard(worker, kill=True)
            return failure_outcome(f"TimeoutError: the point ran longer than its wall-clock limit of "
                                   f"{self.point_timeout_s:g} s (point_timeout_s), its worker was killed",
                                   elapsed)
        # Dead (its pipe closed or its sentinel fired): wait for the exit status that says how.
        death = exit_description(self._discard(worker, kill=False))
        if worker.attempt == 0:
            self.retried.append(RetriedPoint(point.key, dict(point.params),
                                             f"its worker process {death}"))
            queue.appendleft((point, 1))
            return None
        return failure_outcome(f"WorkerDied: the worker process evaluating this point {death}, on the "
                               "first try and again on a new worker", elapsed)
