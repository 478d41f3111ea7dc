"""Cross-check attnsim's systolic-array GEMM compute cycles against SCALE-Sim v3.

Run it with the SCALE-Sim interpreter (``benchmarks/crosscheck_scalesim.sh`` does this)::

    .scalesim-venv/bin/python benchmarks/crosscheck_scalesim.py

For every (GEMM shape, dataflow, array size) it runs

* SCALE-Sim v3 (``pip install scalesim``; lives in ``.scalesim-venv`` because it pins numpy < 2.4)
  through its Python API, one layer at a time, with ``InterfaceBandwidth = CALC`` (no stalls), and
  without writing any trace or report file; and
* attnsim's ``attnsim gemm M N K --arch ... --dataflow D --set arrays.pe2d.rows=R --set
  arrays.pe2d.cols=C --fill-drain F --json`` in ``.venv`` (in-process through ``studies.cli.main``
  in one worker interpreter, or one subprocess per row with ``--attnsim-mode subprocess``), once
  with ``--fill-drain scalesim`` (the compared column, ``--fill-drain`` here) and once with its
  default ``per_fold`` (the second column, ``--compare-fill-drain``; ``none`` skips it),

and prints a markdown table of compute cycles, relative differences and wall times (ms).

GEMM convention (both tools): ``C[M, N] = A[M, K] @ B[K, N]``; K is the reduction rank.

SCALE-Sim v3.0.0 compute-cycle convention (read from ``scalesim/compute/systolic_compute_*.py`` and
``scalesim/memory/double_buffered_scratchpad_mem.py``; checked against every row at run time)::

    dataflow  rows Sr  cols Sc  streamed T   per-fold cycles
    os        M        N        K            T + R + C - 2
    ws        K        N        M            T + 2R + C - 2     (R extra cycles: weight load)
    is        K        M        N            T + 2R + C - 2     (R extra cycles: input load)

    folds          = ceil(Sr / R) * ceil(Sc / C)   (partial folds cost a full fold; no overlap)
    timeline_len   = folds * per_fold_cycles       (rows of SCALE-Sim's demand matrices)
    reported       = timeline_len - 1              ("Total Cycles" / "Compute cycles" it prints:
                                                    the 0-based index of the last OFMAP write)

attnsim's conventions (``mappers.gemm``): ``scalesim`` = the per-fold cycles above exactly (attnsim
counts cycles, so it prints ``timeline_len``: +1 cycle against SCALE-Sim's report); ``per_fold`` =
``2R + C + T - 2`` for every dataflow (OS counts the R cycles that shift the accumulators out, as
``archsim/pe_sim.py`` does PE by PE), so it equals ``scalesim`` for ws/is and exceeds it by R per
fold for os.

This file is also the attnsim worker (``--attnsim-worker``): that mode uses only the standard
library plus attnsim, so it runs under the attnsim interpreter, which has no SCALE-Sim.
"""
from __future__ import annotations

import argparse
import configparser
import contextlib
import io
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "benchmarks" / "scalesim_configs"
SHAPES_CSV = CONFIG_DIR / "gemm_shapes.csv"
CONFIG_TEMPLATE = CONFIG_DIR / "crosscheck_template.cfg"
LAYOUT_CSV = CONFIG_DIR / "layout_default.csv"
ATTNSIM_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
ATTNSIM_CLI = REPO_ROOT / ".venv" / "bin" / "attnsim"
ATTNSIM_GEMM_COMMAND = REPO_ROOT / "studies" / "commands" / "gemm.py"
DEFAULT_ARCH = "specs/arch/fusemax-cloud.yaml"
DEFAULT_ARRAYS = ((16, 16), (32, 32))
DEFAULT_DATAFLOWS = ("os", "ws", "is")
AGREEMENT_TOLERANCE = 0.01


@dataclass(frozen=True)
class GemmShape:
    """One GEMM ``C[m, n] = A[m, k] @ B[k, n]`` (sizes in elements)."""

    name: str
    m: int
    n: int
    k: int


@dataclass(frozen=True)
class GemmCase:
    """A GEMM shape on a ``rows x cols`` systolic array with dataflow ``os``, ``ws`` or ``is``."""

    shape: GemmShape
    dataflow: str
    rows: int
    cols: int


@dataclass
class ToolResult:
    """Compute cycles reported by one tool for one case, with the wall time it took (s)."""

    compute_cycles: int | None
    wall_s: float
    error: str = ""
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# SCALE-Sim convention, closed form
# --------------------------------------------------------------------------------------------

def scalesim_spatiotemporal_dims(case: GemmCase) -> tuple[int, int, int]:
    """(Sr, Sc, T): GEMM ranks SCALE-Sim maps to array rows, array columns and time (elements).

    SCALE-Sim's GEMM topology row ``name, M, N, K,`` becomes IFMAP ``M x K`` (1 x K filter window,
    1 channel) and ``N`` filters, so ofmap pixels = M, window size = K, filters = N.
    """
    m, n, k = case.shape.m, case.shape.n, case.shape.k
    if case.dataflow == "os":
        return m, n, k
    if case.dataflow == "ws":
        return k, n, m
    if case.dataflow == "is":
        return k, m, n
    raise ValueError(f"dataflow: expected os, ws or is, got {case.dataflow!r}")


def scalesim_per_fold_cycles(case: GemmCase) -> int:
    """Cycles of one fold in SCALE-Sim: T + R + C - 2 (os) or T + 2R + C - 2 (ws, is)."""
    _, _, streamed = scalesim_spatiotemporal_dims(case)
    preload_cycles = 0 if case.dataflow == "os" else case.rows
    return preload_cycles + streamed + case.rows + case.cols - 2


def scalesim_fold_count(case: GemmCase) -> int:
    """ceil(Sr / R) * ceil(Sc / C): partial folds count as whole folds."""
    s_rows, s_cols, _ = scalesim_spatiotemporal_dims(case)
    return math.ceil(s_rows / case.rows) * math.ceil(s_cols / case.cols)


def scalesim_timeline_cycles(case: GemmCase) -> int:
    """Length of SCALE-Sim's demand timeline: folds * per-fold cycles (no overlap between folds)."""
    return scalesim_fold_count(case) * scalesim_per_fold_cycles(case)


def scalesim_reported_cycles_closed_form(case: GemmCase) -> int:
    """What SCALE-Sim reports as compute cycles: timeline length - 1 (index of the last write)."""
    return scalesim_timeline_cycles(case) - 1


def overlapped_cycles_closed_form(case: GemmCase) -> int:
    """Folds back to back, one fill/drain for the whole GEMM: folds * T + (per_fold - T).

    Not SCALE-Sim's convention; used only to name what attnsim matches when it disagrees.
    """
    _, _, streamed = scalesim_spatiotemporal_dims(case)
    return scalesim_fold_count(case) * streamed + scalesim_per_fold_cycles(case) - streamed


def matching_conventions(case: GemmCase, cycles: int) -> list[str]:
    """Names of the closed forms that equal ``cycles`` exactly (to explain a mismatch)."""
    _, _, streamed = scalesim_spatiotemporal_dims(case)
    folds = scalesim_fold_count(case)
    two_r_fill_drain = 2 * case.rows + case.cols - 2
    candidates = {
        "reported": scalesim_reported_cycles_closed_form(case),
        "timeline": scalesim_timeline_cycles(case),
        "folds*(2R+C+T-2)": folds * (two_r_fill_drain + streamed),
        "overlapped": folds * streamed + two_r_fill_drain,
        "overlapped, SCALE-Sim fill": overlapped_cycles_closed_form(case),
    }
    return [name for name, value in candidates.items() if value == cycles]


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

def read_gemm_shapes(path: Path) -> list[GemmShape]:
    """Read a SCALE-Sim GEMM topology CSV (header, then ``name, M, N, K,`` rows)."""
    shapes: list[GemmShape] = []
    lines = path.read_text().splitlines()
    for line_number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) < 4:
            raise ValueError(f"{path}:{line_number}: expected 'name, M, N, K,', got {line!r}")
        shapes.append(GemmShape(cells[0], int(cells[1]), int(cells[2]), int(cells[3])))
    return shapes


def parse_array(text: str) -> tuple[int, int]:
    """``'16x32'`` -> (16, 32): array rows x columns (PEs)."""
    rows, sep, cols = text.lower().partition("x")
    if not sep or not rows.isdigit() or not cols.isdigit():
        raise argparse.ArgumentTypeError(f"array: expected ROWSxCOLS like 16x16, got {text!r}")
    return int(rows), int(cols)


def write_scalesim_config(path: Path, rows: int, cols: int, dataflow: str) -> None:
    """Write the template config with the array size and dataflow filled in."""
    config = configparser.ConfigParser()
    config.optionxform = str  # keep SCALE-Sim's key spelling in the written file
    config.read(CONFIG_TEMPLATE)
    config["general"]["run_name"] = f"crosscheck_{rows}x{cols}_{dataflow}"
    config["architecture_presets"]["ArrayHeight"] = str(rows)
    config["architecture_presets"]["ArrayWidth"] = str(cols)
    config["architecture_presets"]["Dataflow"] = dataflow
    with path.open("w") as handle:
        config.write(handle)


# --------------------------------------------------------------------------------------------
# SCALE-Sim runs (need the .scalesim-venv interpreter)
# --------------------------------------------------------------------------------------------

def run_scalesim_case(case: GemmCase, config_path: Path) -> ToolResult:
    """Run one GEMM layer through SCALE-Sim's single-layer simulator; no file is written.

    This is what ``scalesim.simulator.run`` does per layer (compute model, then the memory model
    that turns demand matrices into serviced cycles), minus its report and trace writers.
    """
    from scalesim.layout_utils import layouts
    from scalesim.scale_config import scale_config
    from scalesim.single_layer_sim import single_layer_sim
    from scalesim.topology_utils import topologies

    start_s = time.perf_counter()
    config = scale_config()
    config.read_conf_file(str(config_path))
    topology = topologies()
    m, n, k = case.shape.m, case.shape.n, case.shape.k
    # Same entries as topologies.load_arrays_gemm: ifmap M x K, filter 1 x K, 1 channel, N filters.
    topology.load_layer_params_from_list(case.shape.name,
                                         [case.shape.name, m, k, 1, k, 1, n, 1, 1, 1, 1])
    layer = single_layer_sim()
    with contextlib.redirect_stdout(io.StringIO()):
        layer.set_params(layer_id=0, config_obj=config, topology_obj=topology,
                         layout_obj=layouts(), verbose=False)
        layer.run()
    report = layer.get_compute_report_items()
    wall_s = time.perf_counter() - start_s
    _, compute_cycles, stall_cycles, *_ = report
    timeline_len = layer.compute_system.get_demand_matrices()[2].shape[0]
    return ToolResult(int(compute_cycles), wall_s,
                      extra={"stall_cycles": int(stall_cycles), "timeline_len": int(timeline_len)})


def run_scalesim_official_flow(shapes: list[GemmShape], rows: int, cols: int, dataflow: str,
                               work_dir: Path) -> tuple[list[int], float]:
    """Run all shapes through SCALE-Sim's top-level ``scalesim`` class from files.

    Uses the topology CSV / config / layout files like ``python -m scalesim.scale -i gemm -s N``
    does (no traces; it writes COMPUTE_REPORT.csv etc. under ``work_dir``) and returns the
    "Total Cycles" column and the wall time (s). Cross-checks the direct per-layer API above.
    """
    from scalesim.scale_sim import scalesim

    config_path = work_dir / f"official_{rows}x{cols}_{dataflow}.cfg"
    write_scalesim_config(config_path, rows, cols, dataflow)
    topology_path = work_dir / "gemm_shapes.csv"
    topology_path.write_text("Layer, M, N, K,\n" + "".join(
        f"{shape.name}, {shape.m}, {shape.n}, {shape.k},\n" for shape in shapes))
    start_s = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        simulation = scalesim(save_disk_space=True, verbose=False, config=str(config_path),
                              topology=str(topology_path), layout=str(LAYOUT_CSV),
                              input_type_gemm=True)
        simulation.run_scale(top_path=str(work_dir / "official_out"))
    wall_s = time.perf_counter() - start_s
    report_path = work_dir / "official_out" / f"crosscheck_{rows}x{cols}_{dataflow}" / \
        "COMPUTE_REPORT.csv"
    totals = [int(line.split(",")[2]) for line in report_path.read_text().splitlines()[1:]
              if line.strip()]
    return totals, wall_s


# --------------------------------------------------------------------------------------------
# attnsim runs (need the /work/main/.venv interpreter)
# --------------------------------------------------------------------------------------------

def attnsim_argv(case: GemmCase, arch: str, extra_args: list[str]) -> list[str]:
    """Arguments of ``attnsim`` for one case (the contract of studies/cli/commands/gemm.py)."""
    return ["gemm", str(case.shape.m), str(case.shape.n), str(case.shape.k),
            "--arch", arch, "--dataflow", case.dataflow,
            "--set", f"arrays.pe2d.rows={case.rows}", "--set", f"arrays.pe2d.cols={case.cols}",
            "--json", *extra_args]


def parse_attnsim_output(exit_code: int, stdout: str, stderr: str, wall_s: float) -> ToolResult:
    """Turn one ``attnsim gemm --json`` run into a ToolResult (compute_cycles from its JSON)."""
    if exit_code != 0:
        message = (stderr.strip() or stdout.strip() or f"exit code {exit_code}").splitlines()
        return ToolResult(None, wall_s, error=f"rc={exit_code}: {message[-1][:160]}")
    try:
        payload = json.loads(stdout)
        return ToolResult(int(payload["compute_cycles"]), wall_s,
                          extra={key: payload[key] for key in ("fill_drain",) if key in payload})
    except (ValueError, KeyError, TypeError) as exc:
        return ToolResult(None, wall_s, error=f"bad JSON ({exc}): {stdout.strip()[:160]}")


def attnsim_worker_main() -> int:
    """Worker mode (runs under the attnsim interpreter): jobs on stdin, results on stdout (JSON).

    Input: ``{"argvs": [[...], ...]}``. One untimed warm-up call first (imports, JIT), then each
    argv through ``studies.cli.main`` in-process, timed with ``time.perf_counter`` (s).
    """
    jobs = json.load(sys.stdin)
    sys.path.insert(0, str(REPO_ROOT))
    import_start_s = time.perf_counter()
    from attnsim.studies.cli import main as attnsim_main
    import_s = time.perf_counter() - import_start_s

    def call(argv: list[str]) -> dict:
        out, err = io.StringIO(), io.StringIO()
        start_s = time.perf_counter()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                exit_code = attnsim_main(argv)
            except SystemExit as exc:  # argparse errors
                exit_code = exc.code if isinstance(exc.code, int) else 2
            except Exception as exc:  # report, do not hide: one row fails, the table goes on
                print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
                exit_code = 1
        return {"rc": exit_code, "stdout": out.getvalue(), "stderr": err.getvalue(),
                "wall_s": time.perf_counter() - start_s}

    warmup = call(jobs["argvs"][0]) if jobs["argvs"] else {"wall_s": 0.0}
    results = [call(argv) for argv in jobs["argvs"]]
    json.dump({"import_s": import_s, "warmup_s": warmup["wall_s"], "results": results}, sys.stdout)
    return 0


def run_attnsim_cases(cases: list[GemmCase], arch: str, mode: str,
                      extra_args: list[str]) -> tuple[list[ToolResult], dict]:
    """Run every case through attnsim; returns per-row results and overhead timings (s)."""
    argvs = [attnsim_argv(case, arch, extra_args) for case in cases]
    if mode == "subprocess":
        results = []
        for argv in argvs:
            start_s = time.perf_counter()
            done = subprocess.run([str(ATTNSIM_CLI), *argv], cwd=REPO_ROOT, capture_output=True,
                                  text=True, check=False)
            results.append(parse_attnsim_output(done.returncode, done.stdout, done.stderr,
                                                time.perf_counter() - start_s))
        return results, {}
    start_s = time.perf_counter()
    done = subprocess.run([str(ATTNSIM_PYTHON), str(Path(__file__).resolve()), "--attnsim-worker"],
                          cwd=REPO_ROOT, input=json.dumps({"argvs": argvs}), capture_output=True,
                          text=True, check=False)
    worker_wall_s = time.perf_counter() - start_s
    if done.returncode != 0:
        tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["?"]
        error = f"worker rc={done.returncode}: {tail[0][:160]}"
        return [ToolResult(None, 0.0, error=error) for _ in cases], {"worker_wall_s": worker_wall_s}
    payload = json.loads(done.stdout)
    results = [parse_attnsim_output(item["rc"], item["stdout"], item["stderr"], item["wall_s"])
               for item in payload["results"]]
    overhead = {"worker_wall_s": worker_wall_s, "import_s": payload["import_s"],
                "warmup_s": payload["warmup_s"]}
    return results, overhead


def attnsim_unavailable_reason(arch: str) -> str:
    """Why attnsim cannot be run here ('' when it can)."""
    if not ATTNSIM_PYTHON.exists():
        return f"{ATTNSIM_PYTHON} missing (run `make test` or `make run` first)"
    if not ATTNSIM_GEMM_COMMAND.exists():
        return f"{ATTNSIM_GEMM_COMMAND.relative_to(REPO_ROOT)} does not exist yet"
    if not (REPO_ROOT / arch).exists() and not Path(arch).exists():
        return f"{arch} does not exist yet"
    return ""


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def relative_difference(attnsim_cycles: int | None, scalesim_cycles: int) -> float | None:
    """(attnsim - scalesim) / scalesim, or None when attnsim has no number."""
    if attnsim_cycles is None:
        return None
    return (attnsim_cycles - scalesim_cycles) / scalesim_cycles


def _cycles_text(result: ToolResult) -> str:
    return "n/a" if result.compute_cycles is None else str(result.compute_cycles)


def _diff_text(result: ToolResult, scalesim_cycles: int) -> str:
    diff = relative_difference(result.compute_cycles, scalesim_cycles)
    return "n/a" if diff is None else f"{diff:+.3%}"


def format_table(cases: list[GemmCase], scalesim_results: list[ToolResult],
                 attnsim_results: list[ToolResult], fill_drain: str,
                 compare_results: list[ToolResult] | None, compare_fill_drain: str) -> str:
    """Markdown table, one row per case; times in milliseconds.

    "= closed form" names the closed forms (module docstring) that the compared attnsim column
    equals exactly: ``timeline`` = folds x SCALE-Sim's per-fold cycles = SCALE-Sim's report + 1.
    """
    header = (f"| shape (M x N x K) | df | array | SCALE-Sim cycles | attnsim `{fill_drain}` | rel. diff "
              f"| = closed form |")
    if compare_results is not None:
        header += f" attnsim `{compare_fill_drain}` | rel. diff |"
    header += " SCALE-Sim ms | attnsim ms |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for index, (case, ours, theirs) in enumerate(zip(cases, attnsim_results, scalesim_results)):
        if ours.compute_cycles is None:
            matches = ours.error or "n/a"
        else:
            matches = ", ".join(matching_conventions(case, ours.compute_cycles)) or "none"
        ours_ms = "n/a" if ours.compute_cycles is None else f"{ours.wall_s * 1e3:.1f}"
        shape = case.shape
        row = (f"| {shape.m} x {shape.n} x {shape.k} | {case.dataflow} | {case.rows}x{case.cols} | "
               f"{theirs.compute_cycles} | {_cycles_text(ours)} | "
               f"{_diff_text(ours, theirs.compute_cycles)} | {matches} |")
        if compare_results is not None:
            other = compare_results[index]
            row += f" {_cycles_text(other)} | {_diff_text(other, theirs.compute_cycles)} |"
        lines.append(row + f" {theirs.wall_s * 1e3:.1f} | {ours_ms} |")
    return "\n".join(lines)


def summarize(cases: list[GemmCase], scalesim_results: list[ToolResult],
              attnsim_results: list[ToolResult], list_outliers: bool = True) -> list[str]:
    """Agreement summary lines, per dataflow and overall, then (``list_outliers``) one line per row
    outside the tolerance naming the closed form attnsim equals."""
    lines = []
    for dataflow in sorted({case.dataflow for case in cases}) + ["all"]:
        diffs = [relative_difference(ours.compute_cycles, theirs.compute_cycles)
                 for case, ours, theirs in zip(cases, attnsim_results, scalesim_results)
                 if dataflow in ("all", case.dataflow)]
        numbers = [abs(diff) for diff in diffs if diff is not None]
        if not numbers:
            lines.append(f"{dataflow}: no attnsim numbers")
            continue
        within = sum(value <= AGREEMENT_TOLERANCE for value in numbers)
        exact = sum(value == 0 for value in numbers)
        lines.append(f"{dataflow}: {within}/{len(numbers)} rows within "
                     f"{AGREEMENT_TOLERANCE:.0%}, {exact} exact, max |rel diff| "
                     f"{max(numbers):.3%}")
    for case, ours, theirs in zip(cases, attnsim_results, scalesim_results):
        diff = relative_difference(ours.compute_cycles, theirs.compute_cycles)
        if not list_outliers or diff is None or abs(diff) <= AGREEMENT_TOLERANCE:
            continue
        matches = ", ".join(matching_conventions(case, ours.compute_cycles or -1)) or "no closed form"
        lines.append(f"outside {AGREEMENT_TOLERANCE:.0%}: {case.shape.m} x {case.shape.n} x "
                     f"{case.shape.k} {case.dataflow} {case.rows}x{case.cols}: {diff:+.3%} "
                     f"(attnsim = {matches})")
    return lines


def build_cases(shapes: list[GemmShape], arrays: list[tuple[int, int]],
                dataflows: list[str]) -> list[GemmCase]:
    """Every shape x dataflow x array combination, grouped by array then dataflow."""
    return [GemmCase(shape, dataflow, rows, cols)
            for rows, cols in arrays for dataflow in dataflows for shape in shapes]


def main(argv: list[str] | None = None) -> int:
    """Run both tools over the grid, print the table; exit 1 if SCALE-Sim breaks the formula."""
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--attnsim-worker"]:
        return attnsim_worker_main()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", type=Path, default=SHAPES_CSV,
                        help="SCALE-Sim GEMM topology CSV (default: %(default)s)")
    parser.add_argument("--arrays", type=parse_array, nargs="+", default=list(DEFAULT_ARRAYS),
                        help="array sizes ROWSxCOLS (default: 16x16 32x32)")
    parser.add_argument("--dataflows", nargs="+", choices=DEFAULT_DATAFLOWS,
                        default=list(DEFAULT_DATAFLOWS))
    parser.add_argument("--arch", default=DEFAULT_ARCH, help="attnsim arch YAML")
    parser.add_argument("--attnsim-mode", choices=("inprocess", "subprocess"), default="inprocess",
                        help="inprocess: one worker interpreter calls studies.cli.main per row "
                             "(times exclude interpreter start-up); subprocess: one `attnsim` "
                             "process per row (times include start-up)")
    parser.add_argument("--fill-drain", default="scalesim",
                        help="attnsim's fill/drain convention for the compared column "
                             "(default: %(default)s)")
    parser.add_argument("--compare-fill-drain", default="per_fold",
                        help="attnsim convention of the second column, or 'none' "
                             "(default: %(default)s, attnsim's default)")
    parser.add_argument("--attnsim-arg", action="append", default=[], metavar="ARG",
                        help="extra argument appended to every attnsim call (repeatable), "
                             "e.g. --attnsim-arg=--set --attnsim-arg=global_buffer.capacity_bytes=1048576")
    parser.add_argument("--skip-official-check", action="store_true",
                        help="skip re-running the grid through SCALE-Sim's file-based top level")
    args = parser.parse_args(argv)

    shapes = read_gemm_shapes(args.shapes)
    cases = build_cases(shapes, args.arrays, args.dataflows)
    problems: list[str] = []

    # SCALE-Sim, direct per-layer API.
    scalesim_results: list[ToolResult] = []
    with tempfile.TemporaryDirectory(prefix="crosscheck_scalesim_") as tmp:
        work_dir = Path(tmp)
        config_paths = {}
        for rows, cols in args.arrays:
            for dataflow in args.dataflows:
                path = work_dir / f"array_{rows}x{cols}_{dataflow}.cfg"
                write_scalesim_config(path, rows, cols, dataflow)
                config_paths[(rows, cols, dataflow)] = path
        for case in cases:
            result = run_scalesim_case(case, config_paths[(case.rows, case.cols, case.dataflow)])
            scalesim_results.append(result)
            expected = scalesim_reported_cycles_closed_form(case)
            if result.compute_cycles != expected or result.extra["stall_cycles"] != 0:
                problems.append(f"SCALE-Sim {case}: {result.compute_cycles} cycles, "
                                f"{result.extra['stall_cycles']} stalls; closed form {expected}")

        official_wall_s = 0.0
        if not args.skip_official_check:
            for rows, cols in args.arrays:
                for dataflow in args.dataflows:
                    totals, wall_s = run_scalesim_official_flow(shapes, rows, cols, dataflow,
                                                                work_dir)
                    official_wall_s += wall_s
                    direct = [result.compute_cycles for case, result
                              in zip(cases, scalesim_results)
                              if (case.rows, case.cols, case.dataflow) == (rows, cols, dataflow)]
                    if totals != direct:
                        problems.append(f"official flow {rows}x{cols} {dataflow}: {totals} "
                                        f"!= direct API {direct}")

    # attnsim.
    reason = attnsim_unavailable_reason(args.arch)
    overhead: dict = {}
    compare = args.compare_fill_drain if args.compare_fill_drain != "none" else None
    compare_results: list[ToolResult] | None = None
    if reason:
        attnsim_results = [ToolResult(None, 0.0, error="n/a") for _ in cases]
    else:
        attnsim_results, overhead = run_attnsim_cases(
            cases, args.arch, args.attnsim_mode, ["--fill-drain", args.fill_drain, *args.attnsim_arg])
        if compare is not None:
            compare_results, _ = run_attnsim_cases(
                cases, args.arch, args.attnsim_mode, ["--fill-drain", compare, *args.attnsim_arg])

    print(f"# attnsim vs SCALE-Sim v3 GEMM compute cycles ({len(cases)} rows)\n")
    print(format_table(cases, scalesim_results, attnsim_results, args.fill_drain, compare_results,
                       compare or ""))
    print()
    scalesim_total_s = sum(result.wall_s for result in scalesim_results)
    print(f"SCALE-Sim (direct per-layer API, CALC bandwidth, no traces): {scalesim_total_s:.2f} s "
          f"total over {len(cases)} rows")
    if not args.skip_official_check:
        print(f"SCALE-Sim official file-based flow, same grid (sanity check): "
              f"{official_wall_s:.2f} s")
    print("SCALE-Sim closed form (reported = folds * per_fold - 1) checked on every row: "
          + ("OK" if not problems else f"{len(problems)} PROBLEM(S)"))
    if reason:
        print(f"attnsim: not run: {reason}")
    else:
        attnsim_total_s = sum(result.wall_s for result in attnsim_results)
        print(f"attnsim ({args.attnsim_mode}, --fill-drain {args.fill_drain}): "
              f"{attnsim_total_s:.2f} s total over rows"
              + (f"; worker process {overhead['worker_wall_s']:.2f} s incl. start-up, import "
                 f"{overhead.get('import_s', 0):.2f} s, warm-up call "
                 f"{overhead.get('warmup_s', 0):.2f} s" if overhead else ""))
        if attnsim_total_s > 0:
            print(f"wall-time ratio SCALE-Sim / attnsim (rows only): "
                  f"{scalesim_total_s / attnsim_total_s:.1f}x")
        for line in summarize(cases, scalesim_results, attnsim_results):
            print(f"agreement ({args.fill_drain}) {line}")
        if compare_results is not None:
            for line in summarize(cases, scalesim_results, compare_results, list_outliers=False):
                print(f"agreement ({compare}) {line}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
