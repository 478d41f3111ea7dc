"""Bad input to every command, generated from tables: every refusal is exactly one line on stderr
(``attnsim...: error: ...``), exit code 2, no traceback, and nothing written anywhere in the working
directory. The CLI's ``main`` runs in-process (a case costs milliseconds, not an interpreter start).

Tables: bad files x every command that reads a file; bad values x every numeric or choice option;
bad --set overrides x the commands that take them; bad output paths x every option that writes;
bad study files (code-naming kinds, format strings, unbounded expressions, bad fields); bad result
directories x the commands that read them.
"""
from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from attnsim.studies.cli import main
from attnsim.studies.store import ResultStore

ROOT = Path(__file__).resolve().parents[2]
GEMM_STUDY = ROOT / "specs" / "studies" / "gemm-example.yaml"


# --------------------------------------------------------------------------------------------------
# Bad files: name -> how to make it in a folder (returns its path).


def _write(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path
    return make


def _fifo(folder: Path) -> Path:
    path = folder / "fifo.yaml"
    if not path.exists():
        os.mkfifo(path)
    return path


def _directory(folder: Path) -> Path:
    path = folder / "a-directory.yaml"
    path.mkdir()
    return path


def _laughs() -> bytes:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    return ("\n".join(lines) + "\n").encode()


BAD_FILES: dict[str, Callable[[Path], Path]] = {
    "missing": lambda folder: folder / "no-such-file.yaml",
    "directory": _directory,
    "fifo": _fifo,
    "binary": _write("binary.yaml", bytes(range(256)) * 8),
    "latin-1": _write("latin1.yaml", "name: caf\u00e9\nkind: gemm\n".encode("latin-1")),
    "nul-byte": _write("nul.yaml", b"name: x\x00\nkind: gemm\n"),
    "deep-flow-20000": _write("deep.yaml", b"a: " + b"[" * 20000 + b"\n"),
    "deep-block-200": _write("deep-block.yaml", "".join(f"{'  ' * i}k{i}:\n" for i in range(200)).encode()
                             + b"  " * 200 + b"v: 1\n"),
    "billion-laughs": _write("laughs.yaml", _laughs()),
    "empty": _write("empty.yaml", b""),
    "top-level-list": _write("list.yaml", b"- 1\n- 2\n"),
    "top-level-scalar": _write("scalar.yaml", b"just text\n"),
    "malformed": _write("malformed.yaml", b"name: x\nkind: {unclosed\n"),
    "tab-indent": _write("tabs.yaml", b"name: x\n\tkind: gemm\n"),
    "duplicate-keys": _write("dup.yaml", b"name: x\nname: y\n"),
    "bad-anchor": _write("anchor.yaml", b"a: *nowhere\n"),
    "python-tag": _write("tag.yaml", b"a: !!python/object/apply:os.system ['echo hi']\n"),
}

FILE_READERS: dict[str, Callable[[str], list[str]]] = {
    "arch": lambda f: ["arch", f],
    "sweep": lambda f: ["sweep", f, "--out", "never"],
    "check": lambda f: ["check", f],
    "passes": lambda f: ["passes", f],
    "show": lambda f: ["show", f],
    "simulate-model": lambda f: ["simulate", "--design", "fusemax", "--model", f, "--seq", "1024"],
    "simulate-arch": lambda f: ["simulate", "--design", "fusemax", "--model", "bert-base", "--seq", "1024",
                                "--arch", f],
    "gemm-arch": lambda f: ["gemm", "4", "4", "4", "--arch", f],
    "gpu-arch": lambda f: ["gpu", "--arch", f, "--seq", "1024", "--head-dim", "64"],
    "plot-gantt": lambda f: ["plot", "--gantt", f, "--out", "never.png"],
    "simulate-mapping": lambda f: ["simulate", "--mapping", f, "--model", "bert-base", "--seq", "1024"],
    "simulate-cascade": lambda f: ["simulate", "--cascade", f, "--mapping", "fusemax", "--model", "bert-base",
                                   "--seq", "1024"],
    "gpu-mapping": lambda f: ["gpu", "--cascade", "attention-1pass", "--mapping", f, "--seq", "1024",
                              "--head-dim", "64"],
    "map-cascade": lambda f: ["map", "--cascade", f],
    "import-timeloop": lambda f: ["import", "timeloop", f, "--out", "never.yaml"],
    "import-accelergy": lambda f: ["import", "accelergy", f, "--base", "fusemax-cloud", "--out", "never.yaml"],
    "gemm-scalesim-cfg": lambda f: ["gemm", "--scalesim", f, "--topology", f],
}


# --------------------------------------------------------------------------------------------------
# Bad option values.

BAD_INTEGERS = ["0", "-1", "x", "1.5", "1e3", "", " ", "nan", "inf", "0x10", "99999999999999999999999999"]

INTEGER_OPTIONS: dict[str, Callable[[str], list[str]]] = {
    "gemm-M": lambda v: ["gemm", v, "4", "4"],
    "gemm-N": lambda v: ["gemm", "4", v, "4"],
    "gemm-K": lambda v: ["gemm", "4", "4", v],
    "gpu-seq": lambda v: ["gpu", "--seq", v, "--head-dim", "64"],
    "gpu-head-dim": lambda v: ["gpu", "--seq", "1024", "--head-dim", v],
    "gpu-batch": lambda v: ["gpu", "--seq", "1024", "--head-dim", "64", "--batch", v],
    "gpu-heads": lambda v: ["gpu", "--seq", "1024", "--head-dim", "64", "--heads", v],
    "simulate-seq": lambda v: ["simulate", "--design", "fusemax", "--model", "bert-base", "--seq", v],
    "check-M": lambda v: ["check", "attention-1pass", "--M", v],
    "check-seed": lambda v: ["check", "attention-1pass", "--seed", v + "z"],
    "paper-jobs": lambda v: ["paper", "--out", "never", "--jobs", v if not v.startswith("9") else "-" + v],
    "paper-seqs": lambda v: ["paper", "--out", "never", "--seqs", v],
    "sweep-workers": lambda v: ["sweep", str(GEMM_STUDY), "--out", "never", "--workers",
                                v if not v.startswith("9") else "-" + v],
    "sweep-point-timeout": lambda v: ["sweep", str(GEMM_STUDY), "--out", "never", "--point-timeout",
                                      v if v not in ("1e3", "1.5", "99999999999999999999999999") else "-" + v],
    "sweep-scheduler-timeout": lambda v: ["sweep", str(GEMM_STUDY), "--out", "never", "--scheduler", "tcp://127.0.0.1:1",
                                          "--scheduler-timeout", v if v not in ("1e3", "1.5", "99999999999999999999999999") else "-" + v],
}

TOO_LARGE = {
    "gemm-M-10^12": ["gemm", "1000000000000", "1000000000000", "1000000000000"],
    "gemm-K-2^24+1": ["gemm", "4", "4", str(2 ** 24 + 1)],
    "gpu-seq-10^9": ["gpu", "--seq", "1000000000", "--head-dim", "128"],
    "gpu-rows": ["gpu", "--seq", "1048576", "--head-dim", "64", "--batch", "100000"],
    "simulate-seq-10^30": ["simulate", "--design", "fusemax", "--model", "bert-base", "--seq", "1" + "0" * 30],
    "simulate-seq-2^26+256": ["simulate", "--design", "unfused", "--model", "bert-base", "--seq",
                              str(2 ** 26 + 256)],
}

CHOICES: dict[str, list[str]] = {
    "gemm-dataflow": ["gemm", "4", "4", "4", "--dataflow", "xs"],
    "gemm-fill-drain": ["gemm", "4", "4", "4", "--fill-drain", "never"],
    "gemm-arch-name": ["gemm", "4", "4", "4", "--arch", "no-such-arch"],
    "gpu-design": ["gpu", "--seq", "1024", "--head-dim", "64", "--design", "flash9"],
    "gpu-dtype": ["gpu", "--seq", "1024", "--head-dim", "64", "--dtype", "fp7"],
    "gpu-arch-name": ["gpu", "--seq", "1024", "--head-dim", "64", "--arch", "h900"],
    "gpu-spatial-arch": ["gpu", "--seq", "1024", "--head-dim", "64", "--arch", "fusemax-cloud"],
    "simulate-design": ["simulate", "--design", "fusemaxx", "--model", "bert-base", "--seq", "1024"],
    "simulate-model": ["simulate", "--design", "fusemax", "--model", "bert-large", "--seq", "1024"],
    "simulate-seq-zero-tokens": ["simulate", "--design", "fusemax", "--model", "bert-base", "--seq", "0"],
    "check-name": ["check", "no-such-cascade"],
    "check-dtype": ["check", "attention-1pass", "--dtype", "fp16"],
    "check-size": ["check", "attention-1pass", "--size", "M"],
    "passes-name": ["passes", "no-such-cascade"],
    "passes-rank": ["passes", "attention-1pass", "--rank", "Q"],
    "show-name": ["show", "no-such-cascade"],
    "arch-name": ["arch", "no-such-arch"],
    "paper-design": ["paper", "--out", "never", "--designs", "nope"],
    "paper-model": ["paper", "--out", "never", "--models", "nope"],
    "plot-format": ["plot", ".", "--format", "bmpx"],
    "plot-both": ["plot", ".", "--gantt", "x.csv"],
    "plot-gantt-no-out": ["plot", "--gantt", "x.csv"],
    "plot-nothing": ["plot"],
    "plot-out-without-gantt": ["plot", ".", "--out", "x.png"],
    "results-missing": ["results", "no-such-dir"],
    "sweep-missing": ["sweep", "no-such-study.yaml"],
    "sweep-scheduler-scheme": ["sweep", str(GEMM_STUDY), "--out", "never", "--scheduler", "bogus:://x"],
    "sweep-scheduler-no-port": ["sweep", str(GEMM_STUDY), "--out", "never", "--scheduler", "tcp://127.0.0.1"],
    "unknown-command": ["simulat"],
    "unknown-option": ["gemm", "4", "4", "4", "--fast"],
    "missing-argument": ["gemm", "4", "4"],
    "no-command": [],
}

BAD_SETS = ["foo", "=1", "arrays.pe2d.rows", "arrays.pe2d.rows=-1", "arrays.pe2d.rows=abc",
            "arrays.pe2d.rows=1.5", "arrays.pe2d.rowz=4", "nokey=1", "clock_hz=-1", "clock_hz=nan",
            "clock_hz=inf", "arrays..rows=4", "arrays.pe2d=4", "global_buffer.capacity_bytes=-5",
            "dram.bandwidth_bytes_per_s=0", "arrays.pe2d.rows={a: 1}", "arrays.pe2d.rows=[1, 2]",
            "arrays.pe2d.rows=true", "energy=1"]
SET_COMMANDS: dict[str, Callable[[str], list[str]]] = {
    "arch": lambda s: ["arch", "fusemax-cloud", "--set", s],
    "gemm": lambda s: ["gemm", "4", "4", "4", "--set", s],
    "simulate": lambda s: ["simulate", "--design", "fusemax", "--model", "bert-base", "--seq", "1024",
                           "--set", s],
}


# --------------------------------------------------------------------------------------------------
# Bad output paths (made relative to the working directory of the case).

OUTPUT_PLACES: dict[str, Callable[[Path], str]] = {
    "a-directory": lambda cwd: str(cwd / "in"),
    "missing-parent": lambda cwd: str(cwd / "no" / "such" / "dir" / "file.csv"),
    "read-only-filesystem": lambda cwd: "/proc/attnsim-never.csv",
    "sysfs": lambda cwd: "/sys/attnsim-never.csv",
    "a-device": lambda cwd: "/dev/null/x.csv",
    "empty": lambda cwd: "",
}
OUTPUT_OPTIONS: dict[str, Callable[[str], list[str]]] = {
    "gemm-trace": lambda p: ["gemm", "4", "4", "4", "--trace", p],
    "simulate-trace": lambda p: ["simulate", "--design", "fusemax", "--model", "bert-base", "--seq", "1024",
                                 "--trace", p],
    "plot-gantt-out": lambda p: ["plot", "--gantt", "in/trace.csv", "--out", p],
}
OUT_DIRS: dict[str, Callable[[Path], str]] = {
    "an-existing-file": lambda cwd: str(cwd / "in" / "existing.txt"),
    "under-a-file": lambda cwd: str(cwd / "in" / "existing.txt" / "sub"),
    "read-only-filesystem": lambda cwd: "/proc/attnsim-never",
    "sysfs": lambda cwd: "/sys/attnsim-never",
    "empty": lambda cwd: "",
}
OUT_DIR_OPTIONS: dict[str, Callable[[str], list[str]]] = {
    "sweep-out": lambda p: ["sweep", str(GEMM_STUDY), "--out", p, "--workers", "1"],
    "paper-out": lambda p: ["paper", "--out", p, "--designs", "fusemax", "--models", "bert-base",
                            "--seqs", "1K"],
}


# --------------------------------------------------------------------------------------------------
# Bad studies (each a complete file; all must be refused before anything runs).

GEMM_BASE = "base: {arch: fusemax-cloud, N: 4, K: 4, dataflow: os}\ngrid: {M: [4, 8]}\n"


def _derived(expr: str) -> str:
    return f"name: x\nkind: gemm\n{GEMM_BASE}derived: {{arrays.pe2d.cols: {expr!r}}}\n"


def _lines_plot(fmt: str) -> str:
    return (f"name: x\nkind: gemm\n{GEMM_BASE}plots:\n  - {{name: l, type: lines, title: t, x: M, xlabel: M, "
            f"y: cycles, ylabel: c, series: M, series_format: {fmt!r}}}\n")


BAD_FORMATS = ["{0.__class__}", "{.real}", "{!r}", "{:{x}}", "{:99999999}", "{a}", "{[0]}", "{}{}", "{0}",
               "{.__class__.__mro__}", "{:%Y}", "{", "{0.__init__.__globals__}", "{:>{width}}"]
"""series_format values: only plain number fields are allowed (checked by `attnsim plot`)."""

BAD_STUDIES: dict[str, str] = {
    **{f"kind-{k}": f"name: x\nkind: {k!r}\ngrid: {{x: [1]}}\n" for k in [
        "subprocess:run", "os:system", "this:s", "builtins:eval", "builtins:print", "json:dumps",
        "attnsim.studies.points:GEMM_KIND", "attnsim.studies.points:evaluate_gemm", "shutil:rmtree",
        "importlib:import_module", "pickle:loads", "ctypes:CDLL", "os.path:exists", "gemm.evaluate",
        "GEMM", " ", "gemm:", ":gemm"]},
    **{f"derived-{i}": _derived(e) for i, e in enumerate([
        "9**9**9**9", "2**100000", "M**M**M", "10**400 * 1.0", "(M+1)**5000", "2.0**5000", "exp(1000)",
        "log(0)", "sqrt(-1)", "1/0", "M // 0", "M % 0", "0**-1", "(-8)**(1/3)", "__import__('os')",
        "M.__class__", "lambda: 1", "[1]", "M if M else 1", "(lambda: 1)()", "'a'*3", "M[0]", "f(M)",
        "max()", "floor(M, M)", "min(M, key=1)", "M, M", "M = 1", "M; 1", "1 +", "()", "M" + "+M" * 400,
        "(" * 300 + "M" + ")" * 300, "M @ M", "M << 40", "M & 1", "~M", "not M", "M == 1", "M < 2",
        "{M}", "*M", "open('x')", "eval('1')", "getattr(M, 'x')", "exp(M*1000)", "1e999", "M ** 0.5 ** -9999"])},
    **{f"timeout-{i}": f"name: x\nkind: gemm\n{GEMM_BASE}point_timeout_s: {v}\n" for i, v in enumerate(
        ["0", "-1", "x", "true", ".inf", ".nan", "[1]", "{a: 1}"])},
    "name-with-slash": "name: ../escape\nkind: gemm\n" + GEMM_BASE,
    "name-empty": "name: ''\nkind: gemm\n" + GEMM_BASE,
    "name-list": "name: [a]\nkind: gemm\n" + GEMM_BASE,
    "unknown-key": "name: x\nkind: gemm\nbogus: 1\n" + GEMM_BASE,
    "grid-not-list": "name: x\nkind: gemm\nbase: {arch: fusemax-cloud, N: 4, K: 4, dataflow: os}\ngrid: {M: 4}\n",
    "grid-empty-list": "name: x\nkind: gemm\nbase: {arch: fusemax-cloud, N: 4, K: 4, dataflow: os}\ngrid: {M: []}\n",
    "gemm-M-zero": "name: x\nkind: gemm\nbase: {arch: fusemax-cloud, N: 4, K: 4, dataflow: os}\ngrid: {M: [0]}\n",
    "gemm-M-huge": "name: x\nkind: gemm\nbase: {arch: fusemax-cloud, N: 4, K: 4, dataflow: os}\n"
                   "grid: {M: [1000000000000]}\n",
    "gemm-M-float": "name: x\nkind: gemm\nbase: {arch: fusemax-cloud, N: 4, K: 4, dataflow: os}\ngrid: {M: [4.5]}\n",
    "attention-seq-huge": "name: x\nkind: attention\ngrid: {design: [fusemax], model: [bert-base], "
                          "seq: [1000000000000000000000000000000]}\n",
    "gpu-seq-huge": "name: x\nkind: gpu\ngrid: {design: [flash3], head_dim: [128], seq: [1000000000]}\n",
    "sweep-not-override": "name: x\nkind: gemm\n" + GEMM_BASE + "sweep: {M: [4]}\n",
    "override-bad": "name: x\nkind: gemm\n" + GEMM_BASE + "sweep: {arrays.pe2d.rows: [-4]}\n",
    "arch-missing": "name: x\nkind: gemm\nbase: {arch: nope, N: 4, K: 4, dataflow: os}\ngrid: {M: [4]}\n",
    "arch-is-fifo": "name: x\nkind: gemm\nbase: {arch: fifo.yaml, N: 4, K: 4, dataflow: os}\ngrid: {M: [4]}\n",
    "arch-is-binary": "name: x\nkind: gemm\nbase: {arch: binary.yaml, N: 4, K: 4, dataflow: os}\ngrid: {M: [4]}\n",
}


# --------------------------------------------------------------------------------------------------
# Bad result directories.


def _db_dir(name: str, make: Callable[[Path], None]) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        directory = folder / f"results-{name}"
        directory.mkdir()
        make(directory)
        return directory
    return build


def _tables_without_meta(directory: Path) -> None:
    db = sqlite3.connect(directory / "results.sqlite")
    db.execute("CREATE TABLE points (key TEXT)")
    db.commit()
    db.close()


BAD_RESULT_DIRS: dict[str, Callable[[Path], Path]] = {
    "no-database": _db_dir("none", lambda d: None),
    "empty-file": _db_dir("empty", lambda d: (d / "results.sqlite").write_bytes(b"")),
    "random-bytes": _db_dir("random", lambda d: (d / "results.sqlite").write_bytes(bytes(range(256)) * 64)),
    "text": _db_dir("text", lambda d: (d / "results.sqlite").write_text("hello\n")),
    "truncated-header": _db_dir("truncated", lambda d: (d / "results.sqlite").write_bytes(
        b"SQLite format 3\x00" + b"\x10\x00" + b"\x00" * 30)),
    "database-is-a-directory": _db_dir("dbdir", lambda d: (d / "results.sqlite").mkdir()),
    "other-sqlite": _db_dir("other", _tables_without_meta),
}
RESULT_READERS: dict[str, Callable[[str], list[str]]] = {
    "results": lambda d: ["results", d],
    "results-csv": lambda d: ["results", d, "--csv"],
    "plot": lambda d: ["plot", d],
}


# --------------------------------------------------------------------------------------------------
# The cases and the one assertion they share.


def _cases() -> list[tuple[str, Callable[[Path], list[str]]]]:
    cases: list[tuple[str, Callable[[Path], list[str]]]] = []
    for file_name, make in BAD_FILES.items():
        for reader, argv in FILE_READERS.items():
            cases.append((f"file-{file_name}-{reader}",
                          lambda cwd, make=make, argv=argv: argv(os.path.relpath(make(cwd / "in"), cwd))))
    for option, argv in INTEGER_OPTIONS.items():
        for value in BAD_INTEGERS:
            cases.append((f"int-{option}-{value!r}", lambda cwd, argv=argv, value=value: argv(value)))
    for name, argv in TOO_LARGE.items():
        cases.append((f"size-{name}", lambda cwd, argv=argv: list(argv)))
    for name, argv in CHOICES.items():
        cases.append((f"choice-{name}", lambda cwd, argv=argv: list(argv)))
    for command, argv in SET_COMMANDS.items():
        for value in BAD_SETS:
            cases.append((f"set-{command}-{value}", lambda cwd, argv=argv, value=value: argv(value)))
    for place, where in OUTPUT_PLACES.items():
        for option, argv in OUTPUT_OPTIONS.items():
            cases.append((f"output-{option}-{place}", lambda cwd, argv=argv, where=where: argv(where(cwd))))
    for place, where in OUT_DIRS.items():
        for option, argv in OUT_DIR_OPTIONS.items():
            cases.append((f"outdir-{option}-{place}", lambda cwd, argv=argv, where=where: argv(where(cwd))))
    for name, text in BAD_STUDIES.items():
        def study_case(cwd: Path, name: str = name, text: str = text) -> list[str]:
            path = cwd / "in" / f"study-{abs(hash(name))}.yaml"
            path.write_text(text, encoding="utf-8")
            return ["sweep", os.path.relpath(path, cwd), "--out", "never", "--workers", "1"]
        cases.append((f"study-{name}", study_case))
    for index, fmt in enumerate(BAD_FORMATS):
        def format_case(cwd: Path, index: int = index, fmt: str = fmt) -> list[str]:
            path = cwd / "in" / f"plots-{index}.yaml"
            path.write_text(_lines_plot(fmt), encoding="utf-8")
            return ["plot", "in/store", "--study", os.path.relpath(path, cwd)]
        cases.append((f"series-format-{fmt}", format_case))
    for name, make in BAD_RESULT_DIRS.items():
        for reader, argv in RESULT_READERS.items():
            cases.append((f"results-{name}-{reader}",
                          lambda cwd, make=make, argv=argv: argv(os.path.relpath(make(cwd / "in"), cwd))))
    return cases


CASES = _cases()


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every path under ``root`` with its type and size (FIFOs and directories included)."""
    found: dict[str, tuple[str, int]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        kind = "dir" if path.is_dir() else "fifo" if path.is_fifo() else "file"
        found[str(path.relative_to(root))] = (kind, 0 if kind != "file" else info.st_size)
    return found


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "existing.txt").write_text("keep me\n")
    (tmp_path / "in" / "trace.csv").write_text("unit,einsum,op_id,block,iteration,start_cycle,end_cycle\n"
                                              "pe2d,QK,op0,b,0,0,10\n")
    _fifo(tmp_path / "in")
    _write("binary.yaml", bytes(range(256)))(tmp_path / "in")
    (tmp_path / "in" / "store").mkdir()
    ResultStore.in_directory(tmp_path / "in" / "store").close()  # a valid, empty results database
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name, make_argv", CASES, ids=[name for name, _ in CASES])
def test_refusal_is_one_line_exit_2_nothing_written(workdir: Path, capsys: pytest.CaptureFixture[str],
                                                    name: str, make_argv: Callable[[Path], list[str]]) -> None:
    argv = make_argv(workdir)
    if "arch-is-" in name:  # the study names a file beside it
        for file_name in ("fifo.yaml", "binary.yaml"):
            target = workdir / "in" / file_name
            assert target.exists()
    before = snapshot(workdir)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (argv, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert len(lines) == 1 or (argv == [] and "usage:" in out), (argv, err)
    if argv:
        assert lines[0].startswith("attnsim") and ": error: " in lines[0], lines
    assert snapshot(workdir) == before, argv                        # nothing written, nothing removed
    for place in ("/proc/attnsim-never.csv", "/sys/attnsim-never.csv", "/proc/attnsim-never"):
        assert not Path(place).exists()


def test_the_tables_have_the_breadth_of_the_issue() -> None:
    assert len(CASES) >= 376
