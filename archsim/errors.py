"""The error type of the ``archsim`` layer, and the one renderer of pydantic validation errors.

Every spec model of attnsim (architectures, GPUs, workloads, mapping tables, studies) reports a failed
validation through :func:`validation_problem` / :func:`format_validation_error`, so the messages read
alike: ``key.path: what was expected, got what (and N more problems)``. ``archsim`` is the lowest
layer that has specs; ``mappers`` and ``studies`` import these from here (``einsum_ir`` has its own
cascade errors and no pydantic models).
"""
from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Union

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError


class SpecError(ValueError):
    """A hardware spec, an override or an action table is wrong.

    The message is always one line that names where the problem is (file, line or key path, override)
    and what was expected, e.g. ``specs/arch/x.yaml: arrays.pe2d.rows: expected a positive integer,
    got -4``. Line breaks in the message are folded into spaces so that the command line can print it
    as a single line.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).splitlines()))


def describe_value(value: object) -> str:
    """How a value that was not accepted is shown in a message (YAML spelling where it differs)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list" if value else "an empty list"
    return repr(value)


def _unwrap_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap_optional(args[0])
    if origin is Annotated:
        return _unwrap_optional(typing.get_args(annotation)[0])
    return annotation


def known_keys_at(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """The keys a mapping at ``loc`` (a path into the model ``root``) may have, or None if free-form."""
    from pydantic import BaseModel

    annotation: Any = root
    for segment in loc:
        annotation = _unwrap_optional(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(segment))
            if field is None:
                return None
            annotation = field.annotation
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return None
    annotation = _unwrap_optional(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return None


def describe_error(error: Mapping[str, Any], root: type[BaseModel] | None = None) -> tuple[str, str]:
    """(key path, message) of one pydantic error dict (``ValidationError.errors()`` item).

    Conventions for a model's own checks (``PydanticCustomError`` context):
    ``{"key_path", "message"}`` reports ``message`` at the absolute ``key_path`` (a cross-field check);
    ``{"key"}`` with a message starting ``"<key>: "`` names a key inside the value that failed (an
    entry of a mapping), so the path becomes ``loc.key``. With ``root`` (the model validated), an
    unknown key's message lists the keys allowed there.
    """
    loc = [str(part) for part in error["loc"]]
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = describe_value(error.get("input"))
    if "key_path" in ctx and "message" in ctx:
        return str(ctx["key_path"]), str(ctx["message"])
    message = " ".join(str(error["msg"]).split())
    if "key" in ctx and message.startswith(f"{ctx['key']}: "):
        return ".".join([*loc, str(ctx["key"])]), message[len(f"{ctx['key']}: "):]
    path = ".".join(loc)
    if kind == "missing":
        return path, "missing required key"
    if kind == "extra_forbidden":
        known = known_keys_at(root, tuple(error["loc"][:-1])) if root is not None else None
        return path, f"unknown key '{loc[-1]}'" + (f" (known: {', '.join(known)})" if known else "")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return path, f"expected a mapping, got {got}"
    if kind in ("tuple_type", "list_type"):
        return path, f"expected a list, got {got}"
    if kind == "literal_error":
        return path, f"expected {ctx.get('expected')}, got {got}"
    if kind == "string_type":
        return path, f"expected a string, got {got}"
    return path, message[:1].lower() + message[1:]


def validation_problem(exc: ValidationError, root: type[BaseModel] | None = None) -> tuple[str, str, str]:
    """(key path, message, tail) of the first problem of ``exc``: unknown keys first (a misspelt key
    is usually also reported missing); ``tail`` is ``" (and N more problems)"`` or empty."""
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    path, message = describe_error(errors[0], root)
    more = len(errors) - 1
    return path, message, f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""


def format_validation_error(exc: ValidationError, root: type[BaseModel] | None = None) -> str:
    """``key.path: what was expected (and N more problems)``: the one-line text of ``exc``."""
    path, message, tail = validation_problem(exc, root)
    return f"{path}: {message}{tail}" if path else f"{message}{tail}"


__all__ = ["SpecError", "describe_error", "describe_value", "format_validation_error", "known_keys_at",
           "validation_problem"]
