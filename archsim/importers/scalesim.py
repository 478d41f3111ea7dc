"""A SCALE-Sim (v2 / v3) run description: its ``.cfg`` file and topology CSV, as attnsim GEMMs.

The documented ``.cfg`` (an INI file): ``[general] run_name``; ``[architecture_presets]``
``ArrayHeight``, ``ArrayWidth``, ``IfmapSramSzkB``, ``FilterSramSzkB``, ``OfmapSramSzkB`` (kB),
``IfmapOffset`` / ``FilterOffset`` / ``OfmapOffset``, ``Dataflow`` (os, ws, is), ``Bandwidth``
(words per cycle), ``MemoryBanks``; ``[run_presets] InterfaceBandwidth`` (``CALC``: bandwidth as
the array demands, no stalls; ``USER``: ``Bandwidth``), ``UseRamulatorTrace``; v3 adds ``[layout]``
and ``[sparsity]``. The topology CSV is either GEMM rows ``Layer, M, N, K,`` (``scale.py -i gemm``)
or convolution rows ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels,
Num Filter, Strides,`` which SCALE-Sim runs as the GEMM of its im2col matrices:
``M = ofmap pixels = ((H - R) // stride + 1) x ((W - S) // stride + 1)``, ``K = R x S x C``,
``N = Num Filter``. Convention (both tools): ``C[M, N] = A[M, K] @ B[K, N]``.

How it maps: ``ArrayHeight`` / ``ArrayWidth`` -> ``arrays.pe2d.rows`` / ``cols``; ``Dataflow`` ->
the GEMM dataflow; the three SRAMs together -> ``global_buffer.capacity_bytes`` (rounded down to
whole rows); ``InterfaceBandwidth = USER`` -> ``dram.bandwidth_bytes_per_s`` = Bandwidth x
word_bytes x clock_hz (``CALC`` keeps the architecture's DRAM, and SCALE-Sim's cycles are then
attnsim's ``compute_cycles``); the fold convention is SCALE-Sim's (``fill_drain = scalesim``).
Address offsets, request buffers and banking do not change cycles in attnsim's model and are listed
as unmapped. Refused with one line naming the key: sparsity, custom layouts, Ramulator traces, an
unknown dataflow, a missing array size, malformed topology rows.
"""
from __future__ import annotations

import configparser
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from attnsim.archsim.errors import SpecError
from attnsim.safe_io import FileProblem, read_text

DATAFLOWS = ("os", "ws", "is")
UNMODELLED = ("IfmapOffset", "FilterOffset", "OfmapOffset", "MemoryBanks", "ReadRequestBuffer",
              "WriteRequestBuffer")
"""Keys that do not change attnsim's cycles (reported as unmapped)."""
REFUSED_IF_TRUE = (("sparsity", "SparsitySupport"), ("run_presets", "UseRamulatorTrace"),
                   ("layout", "IfmapCustomLayout"), ("layout", "FilterCustomLayout"))
"""Features attnsim does not model: refused when switched on."""


@dataclass(frozen=True)
class GemmLayer:
    """One topology row as a GEMM ``C[m, n] = A[m, k] @ B[k, n]`` (sizes in elements)."""

    name: str
    m: int
    n: int
    k: int


@dataclass
class ScaleSimRun:
    """A SCALE-Sim run: the GEMMs, the dataflow, the architecture overrides, what did not map."""

    run_name: str
    dataflow: str
    layers: list[GemmLayer]
    overrides: dict[str, object]
    sram_bytes: int
    interface_bandwidth: str
    bandwidth_words_per_cycle: float | None
    unmapped: list[str] = field(default_factory=list)


def _clean(value: str) -> str:
    return value.split("#", 1)[0].strip().strip('"').strip("'").strip()


def _flag(value: str) -> bool:
    return _clean(value).lower() in ("true", "1", "yes", "on")


def read_cfg(path: str | Path) -> tuple[configparser.ConfigParser, str]:
    """Parse a ``.cfg``; SpecError (one line) when it is missing or not an INI file."""
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep SCALE-Sim's CamelCase keys
    display = str(path)
    try:
        parser.read_string(read_text(path), source=display)
    except FileProblem as exc:
        raise SpecError(exc.named(display)) from None
    except configparser.Error as exc:
        line = getattr(exc, "lineno", None)
        raise SpecError(f"{display}{':' + str(line) if line else ''}: not a SCALE-Sim .cfg (INI) file: "
                        f"{' '.join(str(exc).split())}") from None
    return parser, display


def _get(parser: configparser.ConfigParser, section: str, key: str) -> str | None:
    for name in parser.sections():
        if name.lower() == section.lower():
            for option, value in parser.items(name):
                if option.lower() == key.lower():
                    return value
    return None


def _positive(parser: configparser.ConfigParser, section: str, key: str, display: str, required: bool = True
              ) -> float | None:
    text = _get(parser, section, key)
    if text is None:
        if required:
            raise SpecError(f"{display}: {section}.{key}: missing (expected a positive number)")
        return None
    try:
        value = float(_clean(text))
    except ValueError:
        raise SpecError(f"{display}: {section}.{key}: expected a positive number, got {_clean(text)!r}") from None
    if value <= 0:
        raise SpecError(f"{display}: {section}.{key}: expected a positive number, got {_clean(text)}")
    return value


def _int(text: str, where: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise SpecError(f"{where}: expected a positive integer, got {text.strip()!r}") from None
    if value < 1:
        raise SpecError(f"{where}: expected a positive integer, got {value}")
    return value


def read_topology(path: str | Path) -> list[GemmLayer]:
    """The GEMMs of a topology CSV (module docstring); SpecError ``file:line: ...`` on a bad row."""
    display = str(path)
    try:
        rows = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(read_text(path), newline=""))]
    except FileProblem as exc:
        raise SpecError(exc.named(display)) from None
    rows = [(n, [c for c in row if c != ""]) for n, row in enumerate(rows, start=1)]
    rows = [(n, row) for n, row in rows if row]
    if not rows:
        raise SpecError(f"{display}: empty topology (expected a header and one row per layer)")
    header = [c.lower() for c in rows[0][1]]
    gemm = header[1:4] == ["m", "n", "k"]
    width = 4 if gemm else 8
    if not gemm and len(header) < 7:
        raise SpecError(f"{display}:1: expected the header 'Layer, M, N, K' or 'Layer name, IFMAP Height, "
                        f"IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides'")
    layers = []
    for line, row in rows[1:]:
        if len(row) < width - (0 if gemm else 1):
            raise SpecError(f"{display}:{line}: expected {width} values ({', '.join(rows[0][1][:width])}), "
                            f"got {len(row)}")
        name = row[0]
        values = [_int(cell, f"{display}:{line}: {rows[0][1][i + 1]}") for i, cell in enumerate(row[1:width])]
        if gemm:
            m, n, k = values
        else:
            h, w, r, s, c, filters = values[:6]
            stride = values[6] if len(values) > 6 else 1
            if r > h or s > w:
                raise SpecError(f"{display}:{line}: the {r}x{s} filter is larger than the {h}x{w} IFMAP")
            m = ((h - r) // stride + 1) * ((w - s) // stride + 1)
            k, n = r * s * c, filters
        layers.append(GemmLayer(name, m, n, k))
    if not layers:
        raise SpecError(f"{display}: no layer rows after the header")
    return layers


def read_scalesim(cfg: str | Path, topology: str | Path, word_bytes: int, clock_hz: float,
                  row_bytes: int) -> ScaleSimRun:
    """The attnsim view of a SCALE-Sim run (module docstring). ``word_bytes``, ``clock_hz`` and
    ``row_bytes`` are the target architecture's (for the bandwidth and capacity conversions)."""
    parser, display = read_cfg(cfg)
    for section, key in REFUSED_IF_TRUE:
        value = _get(parser, section, key)
        if value is not None and _flag(value):
            raise SpecError(f"{display}: {section}.{key}: attnsim does not model this SCALE-Sim feature "
                            f"(expected False, got {_clean(value)})")
    rows = int(_positive(parser, "architecture_presets", "ArrayHeight", display))  # type: ignore[arg-type]
    cols = int(_positive(parser, "architecture_presets", "ArrayWidth", display))  # type: ignore[arg-type]
    dataflow = _clean(_get(parser, "architecture_presets", "Dataflow") or "os").lower()
    if dataflow not in DATAFLOWS:
        raise SpecError(f"{display}: architecture_presets.Dataflow: expected one of {', '.join(DATAFLOWS)}, "
                        f"got {dataflow!r}")
    sram_kb = 0.0
    for key in ("IfmapSramSzkB", "FilterSramSzkB", "OfmapSramSzkB"):
        sram_kb += _positive(parser, "architecture_presets", key, display, required=False) or 0.0
    overrides: dict[str, object] = {"arrays.pe2d.rows": rows, "arrays.pe2d.cols": cols}
    sram_bytes = int(sram_kb * 1024)
    if sram_bytes:
        capacity = sram_bytes // row_bytes * row_bytes
        if capacity < row_bytes:
            raise SpecError(f"{display}: architecture_presets.IfmapSramSzkB: the SRAMs ({sram_bytes} bytes) hold "
                            f"less than one {row_bytes}-byte global-buffer row")
        overrides["global_buffer.capacity_bytes"] = capacity
    mode = _clean(_get(parser, "run_presets", "InterfaceBandwidth") or "CALC").upper()
    if mode not in ("CALC", "USER"):
        raise SpecError(f"{display}: run_presets.InterfaceBandwidth: expected CALC or USER, got {mode!r}")
    bandwidth = _positive(parser, "architecture_presets", "Bandwidth", display, required=mode == "USER")
    if mode == "USER":
        assert bandwidth is not None
        overrides["dram.bandwidth_bytes_per_s"] = bandwidth * word_bytes * clock_hz
    unmapped = [f"architecture_presets.{key}" for key in UNMODELLED
                if _get(parser, "architecture_presets", key) is not None]
    run_name = _clean(_get(parser, "general", "run_name") or Path(cfg).stem)
    return ScaleSimRun(run_name=run_name, dataflow=dataflow, layers=read_topology(topology), overrides=overrides,
                       sram_bytes=sram_bytes, interface_bandwidth=mode, bandwidth_words_per_cycle=bandwidth,
                       unmapped=unmapped)


__all__ = ["DATAFLOWS", "GemmLayer", "ScaleSimRun", "read_cfg", "read_scalesim", "read_topology"]
