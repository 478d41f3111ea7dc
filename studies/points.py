"""Point kinds (what one point of a study computes), point resolution and hashing, point evaluation.

A *point kind* turns one resolved point into a JSON-serialisable mapping of results (units in the key
names: ``cycles``, ``energy_pj``, ``latency_s``). A study names its kind; the name is looked up in a
registry and nowhere else -- a study file never names code to import:

- the kinds attnsim ships (:data:`BUILTIN_KINDS`);
- kinds an installed package declares as entry points in the group ``attnsim.kinds``
  (:data:`ENTRY_POINT_GROUP`; ``my-kind = my_package.module:MY_KIND``, a :class:`PointKind` or a
  function ``evaluate(point) -> dict``): installing a package is the user's decision, not the study's;
- kinds registered at run time in this process with :func:`register_kind`.

The resolved point that a kind evaluates (and that is hashed into the point's key) is::

    {"kind": "gemm",
     "params": {"M": 64, ..., "fill_drain": "per_fold"},   # kind parameters, defaults filled in
     "arch": {...},           # the architecture after its overrides, canonical dict (or null)
     "version": "0.1.0"}      # the installed attnsim package version

``params`` holds every parameter that is neither ``arch`` nor an architecture override: those two
only shape ``arch``, so the same hardware named by file name or by path gives the same key. The key is
the sha256 of the point's canonical JSON (sorted keys, no spaces). Evaluation gets that JSON text, so
a point evaluates identically in this process, in a local worker process or on a Dask worker.

Adding a kind that ships with attnsim: add ``"name": "module:attribute"`` to :data:`BUILTIN_KINDS`
(imported on first use). Worker processes receive the kind object itself (pickled by reference), so
a kind registered at run time works in them as long as its functions are importable by module path.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import math
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from attnsim.studies.errors import UsageError

EvaluateFn = Callable[[dict[str, Any]], Mapping[str, Any]]


class ParamProblem(ValueError):
    """A kind parameter's value is wrong: ``key`` names it, the message says what was expected."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class PointKind:
    """What a point of a study computes.

    Attributes:
        name: the name studies use in ``kind:``.
        evaluate: ``evaluate(point) -> {result name: value}`` for a resolved point (module docstring);
            it must be a module-level function (worker processes import it by name).
        required: kind parameters every point must have; None accepts any parameters.
        defaults: optional parameters and their values when absent.
        check: ``check(params)`` raises :class:`ParamProblem` for a bad value (before anything runs).
        description: one line for listings.
        default_arch: ``default_arch(params) -> name`` of the architecture of a point that gives no
            ``arch`` (e.g. the design's own); None: such a point has no architecture. Called after
            ``check``.
        arch_loader: ``arch_loader(name_or_path) -> spec`` for the kind's ``arch`` (a spec with
            ``with_overrides(dict)`` and ``model_dump(mode="json")``, raising SpecError on a problem);
            None: :func:`archsim.spec.load_arch` (spatial accelerators).
    """

    name: str
    evaluate: EvaluateFn
    required: tuple[str, ...] | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    check: Callable[[Mapping[str, Any]], None] | None = None
    description: str = ""
    default_arch: Callable[[Mapping[str, Any]], str] | None = None
    arch_loader: Callable[[str], Any] | None = None

    @property
    def known_params(self) -> tuple[str, ...] | None:
        """Every parameter the kind accepts (None: any)."""
        if self.required is None:
            return None
        return (*self.required, *self.defaults)


# --------------------------------------------------------------------------------------------------
# The registry.

BUILTIN_KINDS: dict[str, str] = {
    "gemm": "attnsim.studies.points:GEMM_KIND",
    "attention": "attnsim.studies.kinds:ATTENTION_KIND",
    "gpu": "attnsim.studies.kinds:GPU_KIND",
    "llm": "attnsim.studies.llm:LLM_KIND",
}
"""Kinds shipped with attnsim: name -> ``module:attribute`` holding a :class:`PointKind`."""

_registered: dict[str, PointKind] = {}


def register_kind(kind: PointKind, *, replace: bool = False) -> None:
    """Make ``kind`` available under ``kind.name`` in this process."""
    if not replace and (kind.name in _registered or kind.name in BUILTIN_KINDS):
        raise ValueError(f"point kind '{kind.name}' is already registered")
    _registered[kind.name] = kind


def unregister_kind(name: str) -> None:
    """Remove a kind added with :func:`register_kind` (no error if absent)."""
    _registered.pop(name, None)


ENTRY_POINT_GROUP = "attnsim.kinds"
"""The entry-point group in which an installed package declares point kinds."""


def _entry_points() -> dict[str, Any]:
    """{name: entry point} of the kinds installed packages declare (first declaration wins)."""
    found: dict[str, Any] = {}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, entry)
    return found


def kind_names() -> list[str]:
    """Names of the built-in, installed (entry point) and registered kinds."""
    return sorted({*BUILTIN_KINDS, *_entry_points(), *_registered})


def _import_builtin(ref: str) -> object:
    """The attribute at ``module:attribute`` of a :data:`BUILTIN_KINDS` entry (our own table)."""
    module_name, _, attribute = ref.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def get_kind(name: str) -> PointKind:
    """The kind registered, built in or installed under ``name``.

    Raises UsageError (one line, without a file name) if there is no such kind; ``module:function``
    is refused like any unknown name (a study cannot make attnsim import code).
    """
    if name in _registered:
        return _registered[name]
    if name in BUILTIN_KINDS:
        target = _import_builtin(BUILTIN_KINDS[name])
    else:
        entry = _entry_points().get(name)
        if entry is None:
            hint = (" -- a study names a kind, it cannot name code to import; a package adds kinds "
                    f"by declaring an entry point in the group '{ENTRY_POINT_GROUP}'") if (
                ":" in name or "." in name) else ""
            raise UsageError(f"unknown point kind '{name}' (known: {', '.join(kind_names())}){hint}")
        try:
            target = entry.load()
        except Exception as exc:  # noqa: BLE001 -- an installed plugin that cannot load
            raise UsageError(f"point kind '{name}' (entry point {entry.value} in "
                             f"{ENTRY_POINT_GROUP}) cannot be loaded: {type(exc).__name__}: "
                             f"{' '.join(str(exc).split())}") from None
    if isinstance(target, PointKind):
        return target
    if callable(target):
        return PointKind(name=name, evaluate=target)  # type: ignore[arg-type]
    raise UsageError(f"point kind '{name}': expected a PointKind or a function evaluate(point) -> dict")


# --------------------------------------------------------------------------------------------------
# Resolution: study point -> canonical point, key.


def package_version() -> str:
    """The installed attnsim version (``importlib.metadata``), or ``unknown``."""
    try:
        return metadata.version("attnsim")
    except metadata.PackageNotFoundError:
        return "unknown"


def canonical_json(value: object) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text (NaN/inf rejected)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def point_key(point: Mapping[str, Any]) -> str:
    """sha256 (hex) of the resolved point's canonical JSON."""
    return hashlib.sha256(canonical_json(point).encode("ascii")).hexdigest()


@dataclass(frozen=True)
class ResolvedPoint:
    """One point ready to evaluate.

    Attributes:
        index: position in the study (0-based, first axis slowest).
        key: sha256 of ``point_json``.
        params: the study-level parameters (base, grid, sweep, derived; kind defaults added): what a
            results table shows.
        point_json: canonical JSON of the resolved point (module docstring).
    """

    index: int
    key: str
    params: dict[str, Any]
    point_json: str


def _arch_path(study_path: Path, spec: object) -> str:
    """A relative arch path is looked up next to the study file first, then in the working directory."""
    text = str(spec)
    looks_like_path = "/" in text or "\\" in text or text.endswith((".yaml", ".yml"))
    if looks_like_path and not Path(text).is_absolute():
        beside = study_path.parent / text
        if beside.is_file():
            return str(beside)
    return text


def resolve_points(study: Any) -> list[ResolvedPoint]:
    """Every point of ``study`` (a :class:`studies.study.Study`) resolved and keyed, in study order.

    Checks the kind's parameters and builds each point's architecture. Raises UsageError (one line
    naming the study file and the key) on a missing or unknown parameter, a bad value, an unknown
    architecture or a bad override.
    """
    from attnsim.archsim.errors import SpecError
    from attnsim.archsim.spec import is_arch_key, load_arch

    kind = get_kind(study.spec.kind)
    version = package_version()
    base_archs: dict[str, Any] = {}
    resolved: list[ResolvedPoint] = []
    for index, point in enumerate(study.points()):
        params = dict(point)
        for name, value in kind.defaults.items():
            params.setdefault(name, value)
        overrides = {key: value for key, value in params.items() if is_arch_key(key)}
        kind_params = {key: value for key, value in params.items()
                       if not is_arch_key(key) and key != "arch"}
        known = kind.known_params
        if known is not None:
            for key in params:
                if not is_arch_key(key) and key not in known:
                    raise study.error(_where(study, key), f"unknown parameter '{key}' of kind "
                                                          f"{kind.name} (known: {', '.join(known)})")
            for key in kind.required or ():
                if key not in params:
                    raise study.error("", f"missing parameter '{key}' of kind {kind.name} "
                                          "(give it under base or grid)")
        if kind.check is not None:
            try:
                kind.check(params)
            except ParamProblem as exc:
                raise study.error(_where(study, exc.key), str(exc)) from None
        arch_dict = None
        arch_name = params.get("arch")
        if arch_name is None and kind.default_arch is not None:
            arch_name = kind.default_arch(params)
        if arch_name is not None:
            arch_ref = _arch_path(study.path, arch_name)
            try:
                if arch_ref not in base_archs:
                    base_archs[arch_ref] = (kind.arch_loader or load_arch)(arch_ref)
                arch = base_archs[arch_ref].with_overrides(overrides)
            except SpecError as exc:
                raise _override_error(study, str(exc), overrides) from None
            arch_dict = arch.model_dump(mode="json")
        elif overrides:
            first = next(iter(overrides))
            raise study.error(_where(study, first),
                              "an architecture override needs an architecture: set arch under base")
        payload = {"kind": kind.name, "params": kind_params, "arch": arch_dict, "version": version}
        try:
            text = canonical_json(payload)
        except (TypeError, ValueError) as exc:
            raise study.error("", f"point {index} cannot be written as JSON ({exc})") from None
        resolved.append(ResolvedPoint(index=index, key=point_key(payload), params=params,
                                      point_json=text))
    return resolved


def _where(study: Any, key: str) -> str:
    """``section.key`` for a parameter of the study, or just ``key`` (a kind default)."""
    try:
        return f"{study.section_of(key)}.{key}"
    except KeyError:
        return key


def _override_error(study: Any, message: str, overrides: Mapping[str, Any]) -> UsageError:
    """A SpecError from building a point's architecture, re-labelled with the study's key path."""
    for key, value in overrides.items():
        if message.startswith(f"--set {key}="):
            # "--set KEY=VALUE: problem" -> "problem" (a mapping or text VALUE may itself hold ": ")
            plain = not isinstance(value, (Mapping, list, str)) and ": " in message
            return study.error(_where(study, key), message.split(": ", 1)[1] if plain else message)
    if " with --set " not in message:  # the file itself: unknown name, missing, malformed, invalid
        return study.error(_where(study, "arch"), message)
    shown = ", ".join(f"{key}={value}" for key, value in overrides.items())
    return study.error("", f"the architecture of the point with {shown} is invalid: {message}")


# --------------------------------------------------------------------------------------------------
# Evaluation (runs in this process, a local worker process or a Dask worker).


def _utc_iso(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, tz=timezone.utc).isoformat(timespec="microseconds")


def _error_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    at = f" [{Path(where[0].filename).name}:{where[0].lineno}]" if where else ""
    return f"{type(exc).__name__}: {text}{at}" if text else f"{type(exc).__name__}{at}"


def _non_finite(value: Any, path: str = "") -> tuple[str, float] | None:
    """(dotted path, value) of the first NaN or infinity in a result, or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path or "result", value)
    if isinstance(value, Mapping):
        for name, item in value.items():
            found = _non_finite(item, f"{path}.{name}" if path else str(name))
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _non_finite(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def evaluate_point(kind: PointKind, point_json: str) -> dict[str, Any]:
    """Evaluate one resolved point; never raises for a failing point.

    Returns {"status": "ok"|"error", "result_json": canonical result text or None, "error": one line
    or None, "started_at"/"finished_at": ISO-8601 UTC timestamps, "wall_s": seconds}.
    """
    started = time.time()
    clock = time.perf_counter()
    try:
        result = kind.evaluate(json.loads(point_json))
        if not isinstance(result, Mapping):
            raise TypeError(f"point kind {kind.name} returned {type(result).__name__}, expected a mapping")
        bad = _non_finite(result)
        if bad is not None:
            raise ValueError(f"point kind {kind.name} returned a non-finite number: {bad[0]} = {bad[1]!r} "
                             "(NaN and infinity are not results; JSON cannot hold them)")
        result_json = json.dumps(dict(result), separators=(",", ":"), allow_nan=False)
        outcome: dict[str, Any] = {"status": "ok", "result_json": result_json, "error": None}
    except Exception as exc:  # noqa: BLE001 -- a failing point is recorded, the sweep goes on
        outcome = {"status": "error", "result_json": None, "error": _error_line(exc)}
    wall_s = time.perf_counter() - clock
    outcome.update(started_at=_utc_iso(started), finished_at=_utc_iso(started + wall_s), wall_s=wall_s)
    return outcome


# --------------------------------------------------------------------------------------------------
# The gemm kind.


def _check_gemm(params: Mapping[str, Any]) -> None:
    from attnsim.mappers.gemm import DATAFLOWS, FILL_DRAIN
    from attnsim.studies.limits import MAX_GEMM_DIM, size_problem

    for key in ("M", "N", "K"):
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ParamProblem(key, f"expected a positive integer, got {value!r}")
        problem = size_problem(key, value, MAX_GEMM_DIM, "a GEMM dimension")
        if problem is not None:
            raise ParamProblem(key, problem.split(": ", 1)[1])
    if params["dataflow"] not in DATAFLOWS:
        raise ParamProblem("dataflow", f"expected one of {', '.join(DATAFLOWS)}, got "
                                       f"{params['dataflow']!r}")
    if params["fill_drain"] not in FILL_DRAIN:
        raise ParamProblem("fill_drain", f"expected one of {', '.join(FILL_DRAIN)}, got "
                                         f"{params['fill_drain']!r}")


def evaluate_gemm(point: Mapping[str, Any]) -> dict[str, Any]:
    """C[M,N] = A[M,K] @ B[K,N] on the point's architecture (``mappers.gemm`` + ``archsim.engine``).

    Results: cycles, compute_cycles (same mapping, DRAM never stalling), latency_s, util_2d (fraction
    of the 2D array's PE-cycles doing MACs), macs, traffic_bytes / dram_read_bytes /
    dram_write_bytes, energy_pj, area_mm2, array_rows, array_cols, and energy_breakdown_pj per action.
    """
    from attnsim.archsim.engine import run
    from attnsim.archsim.spec import Arch
    from attnsim.mappers.gemm import map_gemm

    params = point["params"]
    arch = Arch.from_mapping(point["arch"], origin="<study point>")
    m, n, k = params["M"], params["N"], params["K"]
    dataflow, fill_drain = params["dataflow"], params["fill_drain"]
    result = run(map_gemm(m, n, k, arch, dataflow, fill_drain), arch)
    compute = run(map_gemm(m, n, k, arch, dataflow, fill_drain, ideal_dram=True))
    return {
        "cycles": result.cycles,
        "compute_cycles": compute.cycles,
        "latency_s": result.latency_s,
        "util_2d": result.utilisation.get("pe2d", 0.0),
        "macs": result.actions.get("pe2d.mac", 0),
        "traffic_bytes": result.traffic_bytes,
        "dram_read_bytes": result.actions.get("dram.read", 0),
        "dram_write_bytes": result.actions.get("dram.write", 0),
        "energy_pj": result.energy_pj,
        "area_mm2": result.area_mm2,
        "array_rows": arch.arrays.pe2d.rows,
        "array_cols": arch.arrays.pe2d.cols,
        "energy_breakdown_pj": dict(result.energy_breakdown_pj),
    }


GEMM_KIND = PointKind(
    name="gemm", evaluate=evaluate_gemm, required=("arch", "M", "N", "K", "dataflow"),
    defaults={"fill_drain": "per_fold"}, check=_check_gemm,
    description="GEMM on the 2D systolic array (mappers.gemm): M, N, K, dataflow os|ws|is, arch")
