"""The error type of the Einsum IR layer."""
from __future__ import annotations


class CascadeError(ValueError):
    """A cascade (or one of its Einsums) is malformed or cannot be evaluated.

    The message is one line: ``<file>:<line>: <what> at '<token>'; expected <...>``.
    """


def cascade_error(source: str, line: int | None, what: str, token: str, expected: str) -> CascadeError:
    """Build a :class:`CascadeError` with the house message format.

    ``source`` names the file (or ``<string>``), ``line`` is the 1-based line in that file.
    """
    where = f"{source}:{line}" if line is not None else source
    token_text = " ".join(str(token).split())
    return CascadeError(f"{where}: {what} at '{token_text}'; expected {expected}")
