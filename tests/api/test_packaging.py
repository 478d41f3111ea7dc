"""The wheel installs one top-level name, ``attnsim``, with its specs, py.typed and LICENSE.

The wheel is built once, offline (``pip wheel --no-deps --no-build-isolation``; setuptools comes with
the test extras), and inspected rather than installed into a fresh venv; it is then unpacked into a
private folder and imported from another directory, as a site-packages would hold it.
"""
from __future__ import annotations

import email
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


SOURCES = ("pyproject.toml", "README.md", "LICENSE", "attnsim", "einsum_ir", "kernels_ref", "archsim",
           "mappers", "studies", "specs")
"""What a source distribution holds: copied to a clean folder so no build/ left-over gets in."""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "--wheel-dir", str(out), str(source)], check=True, capture_output=True, timeout=300)
    (built,) = out.glob("attnsim-*.whl")
    return built


def _pyproject_version() -> str:
    match = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert match
    return match.group(1)


def test_site_packages_would_hold_attnsim_and_nothing_else_of_ours(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert top == {"attnsim", f"attnsim-{_pyproject_version()}.dist-info"}
    for layer in ("einsum_ir", "kernels_ref", "archsim", "mappers", "studies", "studies/cli", "specs"):
        assert f"attnsim/{layer}/__init__.py" in names, layer
    assert "attnsim/py.typed" in names
    for spec in ("specs/studies/paper.yaml", "specs/arch/fusemax-cloud.yaml", "specs/cascades/attention-1pass.yaml",
                 "specs/workloads/bert-base.yaml", "specs/taxonomy.yaml"):
        assert f"attnsim/{spec}" in names, spec
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


def test_metadata_has_classifiers_a_readme_no_made_up_urls_and_bounded_dependencies(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        metadata_name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(archive.read(metadata_name))
    assert metadata["License-Expression"] == "MIT"
    assert "Typing :: Typed" in metadata.get_all("Classifier")
    assert metadata.get_payload().lstrip().startswith("# attnsim")   # the README is the long description
    assert metadata.get_all("Project-URL") is None   # unpublished: no address until there is a real one
    requires = [r for r in metadata.get_all("Requires-Dist") if "extra ==" not in r]
    for requirement in requires:                      # every dependency has an upper bound
        assert "<" in requirement, requirement
    assert any(r.startswith("dask[distributed]") for r in requires)


def test_the_unpacked_wheel_imports_from_another_directory(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mappers.py").write_text("raise SystemExit('a user module shadowed attnsim')\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = ("import attnsim, attnsim.mappers.designs, attnsim.archsim.spec as s; "
            "print(attnsim.__version__); print(attnsim.__file__); print(s.SPECS_DIR)")
    process = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True,
                             text=True, timeout=120)
    assert process.returncode == 0, process.stderr
    version, module_file, specs_dir = process.stdout.split("\n")[:3]
    assert version == _pyproject_version()
    assert Path(module_file).is_relative_to(site) and Path(specs_dir).is_relative_to(site)
    cli = subprocess.run([sys.executable, "-m", "attnsim", "--version"], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=120)
    assert cli.stdout.strip() == f"attnsim {_pyproject_version()}"


def test_the_source_tree_maps_the_layer_folders_like_an_install() -> None:
    # Python started in a checkout finds ./attnsim first; its layers must resolve to the top-level
    # folders (as pyproject's package-dir maps them), whatever is installed.
    root = Path(__file__).resolve().parents[2]
    code = ("import attnsim, attnsim.einsum_ir, attnsim.specs, pathlib; "
            "print(pathlib.Path(attnsim.einsum_ir.__file__).parent.name, "
            "pathlib.Path(attnsim.__file__).parent.parent == pathlib.Path.cwd())")
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["einsum_ir", "True"]
