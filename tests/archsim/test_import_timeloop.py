"""``attnsim import timeloop``: a Timeloop v0.4 architecture written here in the documented format
(``architecture: {version: 0.4, nodes: [!Container / !Component ...]}``, storage attributes depth /
width / datawidth / n_banks / read_bandwidth, ``spatial: {meshX, meshY}``, the top container's
``global_cycle_seconds``; per-action energies as AccelForge lists them) imported, written, loaded back
and simulated; and one-line refusals naming the key for what has no attnsim counterpart.

Expected values are computed here from the example's numbers.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from attnsim.archsim.errors import SpecError
from attnsim.archsim.importers import import_timeloop
from attnsim.archsim.spec import load_arch
from attnsim.studies.cli import main

ARCH = """\
architecture:
  version: 0.4
  nodes:
  - !Container
    name: system
    attributes:
      technology: "45nm"
      global_cycle_seconds: 1.25e-9
  - !Component
    name: DRAM
    class: DRAM
    attributes:
      type: "LPDDR4"
      width: 64
      datawidth: 16
      shared_bandwidth: 32
    actions:
    - {name: read, energy: 512.0}
    - {name: write, energy: 520.0}
  - !Component
    name: GlobalBuffer
    class: storage
    subclass: SRAM
    attributes:
      depth: 8192
      width: 1024
      n_banks: 16
      datawidth: 16
      read_bandwidth: 64
      write_bandwidth: 32
  - !Container
    name: PE
    spatial: {meshX: 32, meshY: 16}
  - !Component
    name: RegisterFile
    class: storage
    subclass: regfile
    attributes:
      depth: 64
      width: 16
      datawidth: 16
      block_size: 1
    actions:
    - {name: read, energy: 0.9}
    - {name: write, energy: 1.1}
  - !Component
    name: MACC
    class: compute
    subclass: intmac
    attributes:
      datawidth: 16
    actions:
    - {name: compute, energy: 0.56}
"""


@pytest.fixture
def arch_file(tmp_path: Path) -> Path:
    path = tmp_path / "arch.yaml"
    path.write_text(ARCH)
    return path


def test_documented_example_maps(arch_file: Path) -> None:
    outcome = import_timeloop(arch_file, base="fusemax-cloud")
    arch = outcome.arch
    clock_hz = 1 / 1.25e-9
    assert arch.clock_hz == pytest.approx(clock_hz, rel=1e-15)
    assert arch.word_bytes == 16 // 8
    assert (arch.arrays.pe2d.rows, arch.arrays.pe2d.cols) == (16, 32)             # meshY x meshX
    buffer = arch.global_buffer
    assert buffer.capacity_bytes == 8192 * 1024 // 8 and buffer.row_bytes == 1024 // 8
    assert arch.dram.access_bytes == 64 // 8
    assert arch.dram.bandwidth_bytes_per_s == pytest.approx(32 * 2 * clock_hz, rel=1e-15)
    assert {k: arch.energy[k].pj for k in ("dram.read", "dram.write", "pe2d.register_file.read",
                                           "pe2d.register_file.write", "pe2d.mac")} == {
        "dram.read": 512.0, "dram.write": 520.0, "pe2d.register_file.read": 0.9, "pe2d.register_file.write": 1.1,
        "pe2d.mac": 0.56}
    assert "architecture.nodes.5.actions.0" in arch.energy["pe2d.mac"].source
    base = load_arch("fusemax-cloud")
    assert arch.arrays.pe1d == base.arrays.pe1d and arch.area == base.area           # not in the file: the base's
    assert arch.energy["global_buffer.read"] == base.energy["global_buffer.read"]   # no GLB energies given
    assert "arrays.pe1d" in outcome.kept and "energy.global_buffer.read" in outcome.kept
    # the buffer's banks and bandwidths and the register file's size are not attnsim spec fields
    assert sorted(outcome.unmapped) == sorted([
        "architecture.nodes.0.attributes.technology (system)",
        "architecture.nodes.1.attributes.type (DRAM)",
        "architecture.nodes.4.attributes.block_size (RegisterFile)",
        "architecture.nodes.2.attributes.n_banks (GlobalBuffer; not modelled)",
        "architecture.nodes.2.attributes.read_bandwidth (GlobalBuffer; not modelled)",
        "architecture.nodes.2.attributes.write_bandwidth (GlobalBuffer; not modelled)",
        "architecture.nodes.4.attributes.depth (RegisterFile; not modelled)",
        "architecture.nodes.4.attributes.width (RegisterFile; not modelled)"])


def test_written_arch_loads_back_and_simulates(arch_file: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "my.yaml"
    assert main(["import", "timeloop", str(arch_file), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out}: ") and "kept from fusemax-cloud: arrays.pe1d, area" in printed
    again = load_arch(out)
    assert again == import_timeloop(arch_file).arch                                    # the file holds it all
    # OS GEMM 64^3 on the imported 16 x 32 array: ceil(64/16) x ceil(64/32) folds of 2R + C + T - 2 cycles
    assert main(["gemm", "64", "64", "64", "--arch", str(out), "--json"]) == 0
    report = __import__("json").loads(capsys.readouterr().out)
    assert report["compute_cycles"] == 4 * 2 * (2 * 16 + 32 + 64 - 2)


def _replace(old: str, new: str) -> str:
    assert old in ARCH
    return ARCH.replace(old, new)


@pytest.mark.parametrize("text, message", [
    (_replace("version: 0.4", "version: 0.3"), "architecture.version: expected 0.4, got 0.3"),
    ("architecture:\n  version: 0.4\n", "architecture.nodes: expected the list of nodes"),
    ("arch_spec: {}\n", "architecture: expected the top-level key 'architecture'"),
    (_replace("  - !Component\n    name: RegisterFile",
              "  - !Container\n    name: Lane\n    spatial: {meshX: 4}\n  - !Component\n    name: RegisterFile"),
     "architecture.nodes.4.spatial: a second spatial fanout ('Lane' inside the one at architecture.nodes.3)"),
    (_replace("  - !Container\n    name: PE", "  - !Component\n    name: L2\n    class: storage\n"
              "    attributes: {depth: 64, width: 1024, datawidth: 16}\n  - !Container\n    name: PE"),
     "architecture.nodes.3: a second storage level above the PE array ('L2' below 'GlobalBuffer')"),
    (_replace("  - !Container\n    name: PE", "  - !Parallel\n    nodes: []\n  - !Container\n    name: PE"),
     "architecture.nodes.3: a !Parallel node (side-by-side sub-trees) has no attnsim counterpart"),
    (_replace("class: compute", "class: router"), "architecture.nodes.5.class: expected DRAM, storage or compute, got 'router'"),
    (_replace("    subclass: intmac\n    attributes:\n      datawidth: 16", "    subclass: intmac\n    attributes:\n"
              "      datawidth: 8"), "architecture.nodes.5.attributes.datawidth: datawidth 8 differs from 16"),
    (_replace("    spatial: {meshX: 32, meshY: 16}\n", ""),          # no fanout: the register file is a 2nd buffer
     "architecture.nodes.4: a second storage level above the PE array ('RegisterFile' below 'GlobalBuffer')"),
    ("architecture:\n  version: 0.4\n  nodes:\n  - !Component\n    name: DRAM\n    class: DRAM\n",
     "architecture.nodes: no !Container with spatial"),
    (_replace("spatial: {meshX: 32, meshY: 16}", "spatial: {meshX: 0}"),
     "architecture.nodes.3.spatial.meshX: expected a positive integer, got 0"),
    (_replace("  - !Component\n    name: DRAM", "  - !Widget\n    name: DRAM"),
     "architecture.nodes.1: expected a node tagged one of !Container"),
])
def test_refusals_are_one_line_naming_the_key(tmp_path: Path, text: str, message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "arch.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        import_timeloop(path)
    assert message in str(caught.value) and str(caught.value).startswith(f"{path}: ")
    out = tmp_path / "out.yaml"
    assert main(["import", "timeloop", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err
    assert not out.exists()


def test_accelforge_style_tags_read_the_same(tmp_path: Path) -> None:
    # !Memory for storage (DRAM by class or name), !Compute for compute; the same attributes and actions
    text = (ARCH.replace("  - !Component\n    name: DRAM\n    class: DRAM", "  - !Memory\n    name: DRAM")
            .replace("  - !Component\n    name: GlobalBuffer\n    class: storage", "  - !Memory\n    name: GlobalBuffer")
            .replace("  - !Component\n    name: RegisterFile\n    class: storage", "  - !Memory\n    name: RegisterFile")
            .replace("  - !Component\n    name: MACC\n    class: compute", "  - !Compute\n    name: MACC"))
    assert "!Component" not in text
    path = tmp_path / "accelforge.yaml"
    path.write_text(text)
    (tmp_path / "timeloop.yaml").write_text(ARCH)
    accelforge, timeloop = import_timeloop(path).arch, import_timeloop(tmp_path / "timeloop.yaml").arch
    for part in ("clock_hz", "word_bytes", "arrays", "global_buffer", "dram"):
        assert getattr(accelforge, part) == getattr(timeloop, part)
    assert {k: e.pj for k, e in accelforge.energy.items()} == {k: e.pj for k, e in timeloop.energy.items()}
