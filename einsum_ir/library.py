"""The built-in cascades shipped in ``specs/cascades/`` and name-or-path lookup."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from attnsim.einsum_ir.errors import cascade_error
from attnsim.einsum_ir.loader import load_cascade
from attnsim.einsum_ir.model import Cascade

BUILTIN_DIR = Path(str(resources.files("attnsim.specs").joinpath("cascades")))
"""Where the built-in cascade YAML files live (the repository's specs/cascades)."""


def builtin_names() -> tuple[str, ...]:
    """Names of the built-in cascades (file stems), sorted."""
    if not BUILTIN_DIR.is_dir():
        return ()
    return tuple(sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml")))


def builtin_path(name: str) -> Path:
    """The YAML file of built-in cascade ``name``."""
    return BUILTIN_DIR / f"{name}.yaml"


def load_builtin(name: str) -> Cascade:
    """Load built-in cascade ``name`` (raises CascadeError for an unknown name)."""
    path = builtin_path(name)
    if name not in builtin_names():
        raise cascade_error(str(BUILTIN_DIR), None, "unknown built-in cascade", name,
                            f"one of {', '.join(builtin_names())}")
    return load_cascade(path)


def is_cascade_path(name_or_path: str) -> bool:
    """True when the argument names a file rather than a built-in (has a YAML suffix or a slash)."""
    return name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path or Path(name_or_path).is_file()


def resolve_cascade(name_or_path: str) -> Cascade:
    """A built-in cascade by name, or the cascade in a YAML file given by path."""
    if name_or_path in builtin_names():
        return load_builtin(name_or_path)
    if is_cascade_path(name_or_path):
        return load_cascade(name_or_path)
    raise cascade_error("<cascades>", None, "unknown cascade", name_or_path,
                        f"a built-in ({', '.join(builtin_names())}) or a path to a YAML file")
