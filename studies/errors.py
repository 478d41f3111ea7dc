"""Errors that the command line reports as one line and exit code 2."""
from __future__ import annotations


class UsageError(ValueError):
    """Bad command-line input that argparse cannot catch (e.g. an unknown cascade name)."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """Every exception type that means "the user's input is wrong" rather than "attnsim is wrong".

    Each layer owns its error type (lower layers cannot import this module); this is the one place
    that gathers them. A type is listed only once its module exists.
    """
    types: list[type[BaseException]] = [UsageError]
    from attnsim.safe_io import FileProblem  # a file that cannot be read or written (names it)
    types.append(FileProblem)
    try:
        from attnsim.einsum_ir.errors import CascadeError
        types.append(CascadeError)
    except ImportError:
        pass
    try:
        from attnsim.archsim.errors import SpecError
        types.append(SpecError)
    except ImportError:
        pass
    try:
        # Also raised when a schedule is too large to simulate (the message says which unit and why).
        from attnsim.archsim.schedule import ScheduleError
        types.append(ScheduleError)
    except ImportError:
        pass
    try:
        from attnsim.mappers.errors import MappingError
        types.append(MappingError)
    except ImportError:
        pass
    return tuple(types)
