"""What the importers share: the base architecture as a plain mapping, validating and writing the
result (validated before anything is written, so a refused import leaves no file), and YAML reading
of peer-tool files whose tags (``!Component``) a plain safe loader rejects."""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from attnsim.archsim.errors import SpecError
from attnsim.archsim.spec import Arch, load_arch
from attnsim.safe_io import FileProblem, check_yaml_shape, read_text

TAG_KEY = "!tag"
"""Key under which :func:`read_tagged_yaml` keeps a node's YAML tag (``!Component`` ...)."""


@dataclass
class ImportOutcome:
    """An imported architecture: the validated spec, its plain mapping (what is written), which keys
    came from the peer file (``mapped``) and which were kept from the base (``kept``), and the peer
    entries that have no attnsim counterpart and were left out (``unmapped``)."""

    arch: Arch
    data: dict[str, Any]
    mapped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)


def base_mapping(base: str | Path | Arch) -> dict[str, Any]:
    """The base architecture (a name in ``specs/arch/``, a path or an Arch) as a plain mapping."""
    arch = base if isinstance(base, Arch) else load_arch(base)
    return copy.deepcopy(arch.model_dump(mode="json", exclude_none=True))


def validated(data: dict[str, Any], display: str) -> Arch:
    """``data`` as an Arch; SpecError naming ``display`` and the key path when it does not validate."""
    return Arch.from_mapping(data, origin=display)


def write_arch_yaml(outcome: ImportOutcome, out: str | Path, header: str) -> Path:
    """Write the imported spec to ``out`` as YAML with a comment ``header`` (one line per line)."""
    target = Path(out)
    text = "".join(f"# {line}\n" for line in header.splitlines())
    text += yaml.safe_dump(outcome.data, sort_keys=False, width=120, allow_unicode=True)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"--out {target}: cannot write the file ({exc.strerror or exc})") from None
    return target


class _TaggedLoader(yaml.SafeLoader):
    """A safe loader that keeps local tags (``!Component``) as ``{"!tag": "Component", ...}``."""


def _construct_tagged(loader: _TaggedLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
        return {TAG_KEY: suffix, **value}
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_TaggedLoader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_TaggedLoader.add_implicit_resolver(      # 8.0e7 and 940e6 are numbers (YAML 1.1 wants a dot and a sign)
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))
_TaggedLoader.add_multi_constructor("!", _construct_tagged)


def read_tagged_yaml(path: str | Path, what: str) -> dict[str, Any]:
    """Read a peer tool's YAML file (local tags kept under :data:`TAG_KEY`); SpecError (one line:
    file, line and problem) if it is missing, malformed or not a mapping."""
    path = Path(path)
    try:
        text = read_text(path)   # regular files only (a FIFO never blocks), size-bounded, UTF-8
        check_yaml_shape(text, _TaggedLoader)
    except FileProblem as exc:
        raise SpecError(exc.named(str(path))) from None
    try:
        data = yaml.load(text, Loader=_TaggedLoader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{path}{where}: malformed YAML: {' '.join(str(problem).split())}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping at the top level of the {what}")
    return data


def number(value: Any, key: str, display: str, *, positive: bool = True) -> float:
    """``value`` as a float; SpecError ``display: key: expected a (positive) number, got ...``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{display}: {key}: expected a {'positive' if positive else 'non-negative'} number, "
                        f"got {value!r}")
    if (positive and value <= 0) or (not positive and value < 0):
        raise SpecError(f"{display}: {key}: expected a {'positive' if positive else 'non-negative'} number, "
                        f"got {value!r}")
    return float(value)


def integer(value: Any, key: str, display: str) -> int:
    """``value`` as a positive integer (an integral float accepted); SpecError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 1:
        raise SpecError(f"{display}: {key}: expected a positive integer, got {value!r}")
    return int(value)


__all__ = ["ImportOutcome", "TAG_KEY", "base_mapping", "integer", "number", "read_tagged_yaml", "validated",
           "write_arch_yaml"]
