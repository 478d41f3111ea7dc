"""The error type of the ``archsim`` layer."""
from __future__ import annotations


class SpecError(ValueError):
    """A hardware spec, an override or an action table is wrong.

    The message is always one line that names where the problem is (file, line or key path, override)
    and what was expected, e.g. ``specs/arch/x.yaml: arrays.pe2d.rows: expected a positive integer,
    got -4``. Line breaks in the message are folded into spaces so that the command line can print it
    as a single line.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).splitlines()))
