"""``attnsim import accelergy``: an ERT / ART written here in Accelergy's documented v0.3 output format
(``ERT: {version, tables: [{name, actions: [{name, arguments, energy}]}]}``, ``ART: {version, tables:
[{name, area}]}``; instance ranges ``[0..N]`` in names) imported onto a base architecture, the
export -> import round trip, and one-line refusals naming the key.

Expected numbers are the ones written in the example files below.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from attnsim.archsim.errors import SpecError
from attnsim.archsim.importers import export_accelergy, import_accelergy
from attnsim.archsim.spec import load_arch
from attnsim.studies.cli import main

ERT = """\
ERT:
  version: 0.3
  tables:
  - name: system.chip.PE[0..65535].mac
    actions:
    - name: mac_random
      arguments: null
      energy: 2.20035
    - name: mac_reused
      arguments: null
      energy: 1.87673
    - name: idle
      arguments: null
      energy: 0.06595
  - name: system.chip.PE[0..65535].scratchpad
    actions:
    - name: read
      arguments: null
      energy: 1.1
    - name: write
      arguments: null
      energy: 1.3
    - name: idle
      arguments: null
      energy: 0.01
  - name: system.DRAM
    actions:
    - name: read
      arguments: null
      energy: 512
    - name: write
      arguments: null
      energy: 512
    - name: idle
      arguments: null
      energy: 0
  - name: system.chip.GLB
    actions:
    - name: read
      arguments: null
      energy: 12000.5
    - name: update
      arguments: null
      energy: 15000.25
  - name: system.chip.noc
    actions:
    - name: transfer
      arguments: null
      energy: 3.0
"""

ART = """\
ART:
  version: 0.3
  tables:
  - name: system.chip.PE[0..65535].mac
    area: 1239.5
  - name: system.chip.PE[0..65535].scratchpad
    area: 15000
  - name: system.DRAM
    area: 0
  - name: system.chip.GLB
    area: 8.0e7
"""

NAMES = {"PE.mac:mac_random": "pe2d.mac", "PE.scratchpad": "pe2d.register_file", "GLB": "global_buffer"}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "ERT.yaml").write_text(ERT)
    (tmp_path / "ART.yaml").write_text(ART)
    return tmp_path / "ERT.yaml", tmp_path / "ART.yaml"


def test_documented_example_maps_with_sources(files: tuple[Path, Path]) -> None:
    ert, art = files
    outcome = import_accelergy(ert, art, base="fusemax-cloud", names=NAMES)
    energy, area = outcome.arch.energy, outcome.arch.area
    expected_pj = {"pe2d.mac": 2.20035, "pe2d.register_file.read": 1.1, "pe2d.register_file.write": 1.3,
                   "dram.read": 512.0, "dram.write": 512.0, "global_buffer.read": 12000.5,
                   "global_buffer.write": 15000.25}                 # GLB has `update`, no `write`
    for key, pj in expected_pj.items():
        assert energy[key].pj == pj
        assert "Accelergy ERT ERT.yaml (v0.3)" in energy[key].source
    assert "system.chip.PE[0..65535].mac" in energy["pe2d.mac"].source and "mac_random" in energy["pe2d.mac"].source
    assert {"pe2d.mac": 1239.5, "pe2d.register_file": 15000.0, "dram.hbm2": 0.0,
            "global_buffer.sram": 8.0e7} == {k: area[k].um2 for k in ("pe2d.mac", "pe2d.register_file", "dram.hbm2",
                                                                    "global_buffer.sram")}
    assert "ART.tables.0" in area["pe2d.mac"].source
    # `per` is the base's (what one action is in attnsim); unmapped entries stay the base's, with theirs
    base = load_arch("fusemax-cloud")
    assert energy["global_buffer.read"].per == base.energy["global_buffer.read"].per == "row"
    assert energy["pe1d.div"] == base.energy["pe1d.div"]
    assert "energy.pe1d.div" in outcome.kept and "area.pe1d.div" in outcome.kept
    assert outcome.unmapped == ["ERT system.chip.noc"]


def test_cli_writes_a_loadable_arch(files: tuple[Path, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    ert, art = files
    out = tmp_path / "my.yaml"
    argv = ["import", "accelergy", str(ert), str(art), "--base", "fusemax-cloud", "--out", str(out), "--name", "mine"]
    for pattern, target in NAMES.items():
        argv += ["--map", f"{pattern}={target}"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out}: 11 values from Accelergy ERT.yaml + ART.yaml")   # 7 energies, 4 areas
    assert "not mapped (no attnsim counterpart): ERT system.chip.noc" in printed
    arch = load_arch(out)
    assert arch.name == "mine" and arch.energy["dram.read"].pj == 512.0 and arch.area["pe2d.mac"].um2 == 1239.5
    assert yaml.safe_load(out.read_text())["energy"]["pe2d.mac"]["source"].startswith("Accelergy ERT")
    # the new arch runs: 64^3 MACs on the 2D array at 2.20035 pJ each are in its GEMM energy
    assert main(["gemm", "64", "64", "64", "--arch", str(out), "--json"]) == 0
    assert '"energy_pj"' in capsys.readouterr().out


def test_export_then_import_round_trips() -> None:
    original = load_arch("fusemax-cloud")
    ert, art = export_accelergy(original)
    assert ert["ERT"]["version"] == 0.3 and all("actions" in t for t in ert["ERT"]["tables"])
    scrambled = original.with_overrides({f"energy.{key}.pj": 1.0 for key in original.energy}
                                        | {f"area.{key}.um2": 1.0 for key, e in original.area.items() if e.um2 is not None})
    assert all(e.pj == 1.0 for e in scrambled.energy.values())

    def imported(tmp: Path) -> object:
        (tmp / "e.yaml").write_text(yaml.safe_dump(ert))
        (tmp / "a.yaml").write_text(yaml.safe_dump(art))
        return import_accelergy(tmp / "e.yaml", tmp / "a.yaml", base=scrambled).arch

    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        arch = imported(Path(tmp))
    assert {k: e.pj for k, e in arch.energy.items()} == {k: e.pj for k, e in original.energy.items()}
    assert {k: e.um2 for k, e in arch.area.items()} == {k: e.um2 for k, e in original.area.items()}


@pytest.mark.parametrize("ert, message", [
    ("tables: []\n", "ERT: expected the top-level key 'ERT' of an Accelergy ERT file"),
    ("ERT: {version: 0.3, tables: [{actions: []}]}\n", "ERT.tables.0.name: expected the component name of the table"),
    ("ERT: {version: 0.3, tables: [{name: system.dram}]}\n", "ERT.tables.0.actions: expected a list of actions"),
    ("ERT: {version: 0.3, tables: [{name: system.dram, actions: [{name: read, energy: fast}]}]}\n",
     "ERT.tables.0.actions.0.energy: expected a non-negative number, got 'fast'"),
    ("ERT:\n  version: 0.3\n  tables:\n  - name: system.dram\n    actions:\n"
     "    - {name: read, arguments: {data_delta: 0}, energy: 100}\n"
     "    - {name: read, arguments: {data_delta: 1}, energy: 250}\n",
     "ERT.tables.0.actions.0.arguments: the energy of 'read' depends on its arguments (100, 250 pJ)"),
    ("ERT: {version: 0.3, tables: [{name: 'system.PE[0..3].mac', actions: [{name: a, energy: 1}, "
     "{name: b, energy: 2}]}]}\n", "ERT.tables.0.actions: table 'system.PE[0..3].mac' has actions a, b"),
    ("ERT: {version: 0.3, tables: [{name: system.noc, actions: [{name: transfer, energy: 1}]}]}\n",
     "ERT.tables: no table names an attnsim component"),
    ("ERT: [unclosed\n", "malformed YAML"),
])
def test_refusals_are_one_line_naming_the_key(tmp_path: Path, ert: str, message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ERT.yaml"
    path.write_text(ert)
    names = {"PE.mac": "pe2d.mac"} if "PE[0..3]" in ert else {}
    with pytest.raises(SpecError) as caught:
        import_accelergy(path, base="fusemax-cloud", names=names)
    assert message in str(caught.value) and str(caught.value).startswith(str(path))
    out = tmp_path / "out.yaml"
    argv = ["import", "accelergy", str(path), "--out", str(out)] + [f"--map={k}={v}" for k, v in names.items()]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err
    assert not out.exists()                               # nothing half-written


def test_bad_map_and_missing_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import"]) == 2
    assert "import: expected a source" in capsys.readouterr().err
    (tmp_path / "e.yaml").write_text(ERT)
    assert main(["import", "accelergy", str(tmp_path / "e.yaml"), "--map", "nonsense", "--out",
                 str(tmp_path / "o.yaml")]) == 2
    assert capsys.readouterr().err == "attnsim: error: --map nonsense: expected ACCELERGY_NAME=COMPONENT, e.g. PE.mac=pe2d.mac\n"
