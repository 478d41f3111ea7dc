"""attnsim's Python API: a thin layer over the command line's own functions (``studies.*``).

Every function here is re-exported by :mod:`attnsim` (``attnsim.simulate(...)``); see its docstring
for an example. Results are read-only mappings with the same keys as the command line's ``--json``
output (units in the names: ``latency_s``, ``cycles``, ``energy_pj``, ``traffic_bytes``, ``area_mm2``;
utilisations are fractions) and a ``to_frame()`` that gives a one-row (or one-row-per-item)
:class:`pandas.DataFrame`. Heavy modules (numba, sympy, pandas, dask) are imported on first use.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas

    from attnsim.archsim.gpu_spec import GpuSpec
    from attnsim.archsim.spec import Arch
    from attnsim.einsum_ir import Cascade
    from attnsim.mappers.workloads import Workload
    from attnsim.studies.sweep import SweepSummary

PathLike = str | Path


# --------------------------------------------------------------------------------------------------
# Results.


class Report(Mapping[str, Any]):
    """A read-only mapping of result name -> value (the command line's ``--json`` object).

    ``report["latency_s"]`` reads one value; :meth:`to_dict` gives a deep copy; :meth:`to_frame` one
    DataFrame row whose nested values are flattened with dots (``per_einsum.QK.util_2d``), lists kept
    as JSON text -- the same columns ``attnsim results`` and :func:`results` give for a sweep.
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={self._data[k]!r}" for k in list(self._data)[:6])
        return f"{type(self).__name__}({shown}, ...)"

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the report as plain dicts and lists (JSON-serialisable)."""
        return copy.deepcopy(self._data)

    def to_json(self) -> str:
        """The report as JSON text (what ``--json`` prints)."""
        return json.dumps(self._data, indent=2)

    def flat(self) -> dict[str, Any]:
        """The report with nested mappings flattened to dotted names (one value per column)."""
        from attnsim.studies.store import flatten_result

        return flatten_result(self._data)

    def to_frame(self) -> pandas.DataFrame:
        """One row: every value of :meth:`flat` as a column."""
        import pandas

        return pandas.DataFrame([self.flat()])


class SimulationResult(Report):
    """One simulated point (:func:`simulate` or :func:`simulate_gpu`).

    Besides the report's keys, says which hardware ran: ``arch`` (the spec's name), ``arch_origin``
    (the file it was read from, or ``<mapping>``) and ``design_default_arch`` (the architecture the
    design is evaluated on by default) -- so FLAT run on FuseMax's chip reads ``arch fusemax-cloud``,
    ``design_default_arch flat-cloud``. The spec object itself is :attr:`arch`.
    """

    def __init__(self, data: Mapping[str, Any], arch: Arch | GpuSpec) -> None:
        super().__init__(data)
        self.arch = arch


class PassesResult(Report):
    """The pass analysis of a cascade over one rank (``attnsim passes --json``).

    Keys: ``cascade``, ``rank``, ``passes`` (int), ``einsum_pass`` {Einsum: pass},
    ``fusable_groups``, ``live`` (minimum live footprints in elements) and ``live_total``.
    :meth:`to_frame` gives one row per Einsum: einsum, pass, coverage, source.
    """

    def __init__(self, data: Mapping[str, Any], sources: Mapping[str, str], coverage: Mapping[str, str]
                 ) -> None:
        super().__init__(data)
        self._sources = dict(sources)
        self._coverage = dict(coverage)

    @property
    def passes(self) -> int:
        """Number of passes over the rank's fibers any implementation must make."""
        return int(self._data["passes"])

    def to_frame(self) -> pandas.DataFrame:
        """One row per Einsum, in cascade order: einsum, pass, coverage, source."""
        import pandas

        return pandas.DataFrame([{"einsum": name, "pass": self._data["einsum_pass"][name],
                                  "coverage": self._coverage[name], "source": source}
                                 for name, source in self._sources.items()])


class CheckReport(Report):
    """A numerical check of a cascade (``attnsim check --json``): ``passed``, ``max_abs_err``,
    ``max_rel_err`` (normwise, the worst over the references), ``tolerance``, ``comparisons``.
    :meth:`to_frame` gives one row per reference compared with."""

    @property
    def passed(self) -> bool:
        """True when every reference agrees within the tolerance."""
        return bool(self._data["passed"])

    def to_frame(self) -> pandas.DataFrame:
        """One row per reference: cascade, dtype, reference, max_abs_err, max_rel_err, tolerance."""
        import pandas

        return pandas.DataFrame([{"cascade": self._data["cascade"], "dtype": self._data["dtype"],
                                  "reference": reference, **errors, "tolerance": self._data["tolerance"]}
                                 for reference, errors in self._data["comparisons"].items()])


@dataclass(frozen=True)
class SweepResult:
    """What :func:`sweep` did: the summary (counts, failed points) and where the results are.

    Attributes: ``summary`` (:class:`studies.sweep.SweepSummary`), ``directory`` (holds
    ``results.sqlite``). :meth:`to_frame` reads every stored point (:func:`results`).
    """

    summary: SweepSummary
    directory: Path

    @property
    def ok(self) -> bool:
        """True when every point of the study is stored with status ok."""
        return not self.summary.failed

    def to_frame(self, *, timing: bool = False) -> pandas.DataFrame:
        """The stored points as a DataFrame, one row per point (:func:`results`)."""
        return results(self.directory, timing=timing)


# --------------------------------------------------------------------------------------------------
# Loading.


def load_arch(name_or_path: PathLike, overrides: Mapping[str, object] | None = None) -> Arch | GpuSpec:
    """A validated hardware spec: a name in ``specs/arch/`` (``fusemax-cloud``, ``h100-sxm``) or a YAML path.

    ``overrides`` replaces values by dotted key path, e.g. ``{"global_buffer.capacity_bytes": 2**21}``
    (bytes), and re-validates. Spatial accelerators give an :class:`archsim.spec.Arch`, specs with
    ``kind: gpu`` a :class:`archsim.gpu_spec.GpuSpec`. Either has ``.with_overrides(dict)``.
    Raises :class:`archsim.errors.SpecError` (one line: file, key path, what was expected).
    """
    from attnsim.archsim.spec import load_arch as load_accelerator, spec_kind

    if spec_kind(name_or_path) == "gpu":
        from attnsim.archsim.gpu_spec import load_gpu

        return load_gpu(name_or_path, overrides)
    return load_accelerator(name_or_path, overrides)


def load_cascade(name_or_path: PathLike) -> Cascade:
    """An Einsum cascade: a built-in name (``attention-1pass``; ``attnsim cascades`` lists them) or a
    YAML path. Raises :class:`einsum_ir.errors.CascadeError` (one line: file, line, token)."""
    from attnsim.einsum_ir.library import resolve_cascade

    return resolve_cascade(str(name_or_path))


def load_workload(name_or_path: PathLike) -> Workload:
    """A workload (model shape: batch, heads, head dims, d_model, FFN width): a name in
    ``specs/workloads/`` (``bert-base``, ``trxl-wt103``, ``t5-small``, ``xlm``) or a YAML path."""
    from attnsim.mappers.workloads import load_workload as load

    return load(name_or_path)


# --------------------------------------------------------------------------------------------------
# Simulation.


def _seq(value: int | str, option: str = "seq") -> int:
    from attnsim.studies.cli.options import parse_count

    return parse_count(value, option)


def simulate(design: str, model: str | Path | Workload, seq: int | str, *, arch: PathLike | Arch,
             overrides: Mapping[str, object] | None = None, end_to_end: bool = False,
             closed_form: bool = False, trace: PathLike | None = None) -> SimulationResult:
    """Simulate one attention ``design`` for ``model`` at ``seq`` tokens on ``arch``.

    Args:
        design: ``unfused``, ``flat``, ``flash2``, ``fusemax-cascade``, ``fusemax-arch`` or ``fusemax``.
        model: a workload name, YAML path or :class:`mappers.workloads.Workload`.
        seq: sequence length M = P in tokens: an int or ``"64K"`` / ``"1M"`` (x1024, x1048576).
        arch: the architecture, always explicit -- a name, a YAML path or an :func:`load_arch` result.
            One arch for several designs runs them all on that hardware; each design's own is
            ``attnsim.load_arch(DESIGNS[design].default_arch)`` (the result names it either way).
        overrides: dotted-key overrides applied to ``arch`` for this call.
        end_to_end: add the encoder layer's linear layers (``attention_*``/``linear_*`` keys).
        closed_form: the artifact's analytical model (no pipeline fill/drain, no buffer stalls).
        trace: write the per-operation timeline (CSV) there.

    Returns the report of ``attnsim simulate --json`` (``latency_s`` s, ``cycles``, ``energy_pj`` pJ,
    ``traffic_bytes`` B of DRAM traffic, ``util_2d``/``util_1d`` fractions, ``area_mm2``,
    ``per_einsum``) plus ``arch_origin`` and ``design_default_arch`` (:class:`SimulationResult`).
    """
    from attnsim.archsim.spec import Arch, load_arch as load_accelerator
    from attnsim.mappers.designs import design as design_entry
    from attnsim.studies.simulate import simulate as run

    spec = arch if isinstance(arch, Arch) else load_accelerator(arch)
    spec = spec.with_overrides(overrides)
    report = run(design, model, _seq(seq), arch=spec, end_to_end=end_to_end, closed_form=closed_form,
                 trace=trace)
    report["arch_origin"] = spec.origin
    report["design_default_arch"] = design_entry(design).default_arch
    return SimulationResult(report, spec)


def simulate_gpu(design: str, seq: int | str, head_dim: int, *, arch: PathLike | GpuSpec,
                 overrides: Mapping[str, object] | None = None, causal: bool = False,
                 dtype: str = "fp16", batch: int | None = None, heads: int | None = None
                 ) -> SimulationResult:
    """Simulate one forward attention call with ``design`` on the GPU spec ``arch``.

    Args:
        design: ``flash2``, ``flash3``, ``flat`` or ``fusemax``.
        seq: queries = keys (tokens): an int or ``"4K"``.
        head_dim: 64, 128 or 256.
        arch: a GPU spec name (``h100-sxm``, ``h100-pcie``, ``h200``), YAML path or :func:`load_arch` result.
        overrides: dotted-key overrides of the GPU spec for this call.
        causal, dtype (``fp16``, ``bf16``, ``fp8``), batch, heads: the call; batch/heads default to
            FlashAttention-3's protocol (batch x seq = 16K tokens, heads x head_dim = 2048).

    Returns the report of ``attnsim gpu --json`` (``latency_s``, ``cycles``, ``traffic_bytes`` of HBM,
    ``tflops`` in FA3's convention, ``util_*`` per unit, ``bound``, ``energy_pj``) plus
    ``arch_origin`` and ``design_default_arch`` (null: GPU designs have none).
    """
    from attnsim.archsim.gpu_spec import GpuSpec, load_gpu
    from attnsim.studies.gpu import make_workload, predict, run_report

    spec = arch if isinstance(arch, GpuSpec) else load_gpu(arch)
    spec = spec.with_overrides(overrides)
    workload = make_workload(_seq(seq), head_dim, causal=causal, dtype=dtype, batch=batch, heads=heads)
    report = run_report(spec, design, workload, predict(spec, design, workload))
    report["arch_origin"] = spec.origin
    report["design_default_arch"] = None
    return SimulationResult(report, spec)


# --------------------------------------------------------------------------------------------------
# Cascades.


def passes(cascade: str | Path | Cascade, rank: str | None = None) -> PassesResult:
    """How many passes ``cascade`` makes over ``rank`` (default: its ``pass_rank``, else M), which
    Einsums fuse, and the minimum live footprints in elements (symbolic in the shapes)."""
    from attnsim.einsum_ir import Cascade
    from attnsim.einsum_ir.bounds import live_bounds
    from attnsim.einsum_ir.passes import analyze_passes

    loaded = cascade if isinstance(cascade, Cascade) else load_cascade(cascade)
    analysis = analyze_passes(loaded, rank)
    bounds = live_bounds(analysis)
    data = analysis.to_json()
    data["live"] = bounds.to_json()
    data["live_total"] = str(bounds.total)
    return PassesResult(data, {einsum.name: einsum.source for einsum in loaded.einsums}, analysis.coverage)


def check(cascade: str | Path | Cascade, sizes: Mapping[str, int | str] | None = None, *, seed: int = 0,
          dtype: str = "fp64") -> CheckReport:
    """Evaluate ``cascade`` on random inputs and compare it with independent references (the numba
    kernel and numpy softmax attention, or its closed form). ``sizes`` (``{"M": "4K"}``) override
    :data:`studies.check.DEFAULT_SIZES`; ``dtype`` is ``fp64`` (tolerance 1e-12) or ``fp32`` (1e-5)."""
    from attnsim.einsum_ir import Cascade
    from attnsim.studies.check import DEFAULT_SIZES, DTYPES, check_cascade
    from attnsim.studies.cli.options import parse_count
    from attnsim.studies.errors import UsageError

    if dtype not in DTYPES:
        raise UsageError(f"dtype: expected one of {', '.join(DTYPES)}, got {dtype!r}")
    all_sizes = dict(DEFAULT_SIZES)
    all_sizes.update({name: parse_count(value, f"sizes.{name}", minimum=-(2**63))
                      for name, value in (sizes or {}).items()})
    loaded = cascade if isinstance(cascade, Cascade) else load_cascade(cascade)
    return CheckReport(check_cascade(loaded, all_sizes, seed=seed, dtype=DTYPES[dtype]).to_json())


# --------------------------------------------------------------------------------------------------
# Studies.


def sweep(study: PathLike, out: PathLike | None = None, *, workers: int | None = None,
          scheduler: str | None = None, quiet: bool = True, retry_failed: bool = False) -> SweepResult:
    """Run every point of ``study`` (a YAML path or a built-in name: ``paper``, ``gpu``, ...) not yet in
    ``out/results.sqlite`` (default ``out/<study name>``), committing each as it finishes.

    ``workers``: local processes (default: CPU cores; 1 runs here); ``scheduler``: a Dask scheduler
    address instead. Returns a :class:`SweepResult`; ``.to_frame()`` reads the results.
    """
    from attnsim.studies.sweep import run_sweep

    summary = run_sweep(study, out, workers=workers, scheduler=scheduler, quiet=quiet,
                        retry_failed=retry_failed)
    return SweepResult(summary, Path(summary.out_dir))


def results(directory: PathLike, *, timing: bool = False) -> pandas.DataFrame:
    """The points a sweep stored in ``directory/results.sqlite``, one row per point.

    Columns as ``attnsim results --csv``: key, study, kind, status, error, the parameters, the results
    (nested ones flattened with dots, units in the names), and with ``timing`` started_at,
    finished_at (ISO-8601 UTC) and wall_s (seconds).
    """
    import pandas

    from attnsim.studies.errors import UsageError
    from attnsim.studies.store import DATABASE_NAME, ResultStore, tidy_table

    path = Path(directory)
    if not (path / DATABASE_NAME).is_file():
        raise UsageError(f"{path}: no {DATABASE_NAME} here (run attnsim.sweep or `attnsim sweep` first)")
    with ResultStore.in_directory(path, create=False) as store:
        columns, rows = tidy_table(store.records(), timing=timing)
    return pandas.DataFrame(rows, columns=columns)


__all__ = ["CheckReport", "PassesResult", "Report", "SimulationResult", "SweepResult", "check",
           "load_arch", "load_cascade", "load_workload", "passes", "results", "simulate", "simulate_gpu",
           "sweep"]
