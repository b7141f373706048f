"""Exceptions that speak to people.

Every error a user can cause is a :class:`HikisigError`. Errors in input files
are collected as :class:`Problem` records (file, row, column, value, what was
expected) and raised together as one :class:`InputError`, so that a user sees
every problem of a file at once. The command line prints one line per problem
on stderr and exits with code 2, never with a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_PROBLEMS", "AlignmentError", "HikisigError", "InputError", "Problem", "ProblemCollector",
           "TooFewSamplesError"]

#: Stop collecting problems of one file after this many.
MAX_PROBLEMS = 50


class HikisigError(Exception):
    """Base class of every error hikisig reports to a user."""


class AlignmentError(HikisigError, ValueError):
    """Per-sample values that do not line up with the samples of the data (a Series whose
    index lacks some sample ids, or an array of the wrong length)."""


class TooFewSamplesError(HikisigError):
    """The data do not hold enough samples for an analysis; ``stage`` names it."""

    def __init__(self, message: str, stage: str = "") -> None:
        super().__init__(message)
        self.stage = stage


@dataclass(frozen=True)
class Problem:
    """One problem in an input file.

    Parameters
    ----------
    file : str
        File name as the user gave it.
    message : str
        What is wrong and what was expected.
    row : int or None
        Line number in the file (1-based, the header is line 1) or Excel row.
    column : str or None
        Column name.
    value : object
        The offending value as read.

    Examples
    --------
    >>> str(Problem("a.csv", "not a number", row=3, column="Orn", value="x"))
    "a.csv: row 3, column 'Orn': 'x': not a number"
    """

    file: str
    message: str
    row: int | None = None
    column: str | None = None
    value: object = None

    def __str__(self) -> str:
        where = [self.file]
        loc = []
        if self.row is not None:
            loc.append(f"row {self.row}")
        if self.column is not None:
            loc.append(f"column {self.column!r}")
        head = where[0] + (": " + ", ".join(loc) if loc else "")
        if self.value is not None:
            return f"{head}: {str(self.value)!r}: {self.message}"
        return f"{head}: {self.message}"


class InputError(HikisigError):
    """One or more problems in user input; nothing was written.

    Parameters
    ----------
    problems : list of Problem
        The problems found (at most :data:`MAX_PROBLEMS`).
    truncated : bool
        Whether more problems were found than are listed.
    """

    def __init__(self, problems: list[Problem], truncated: bool = False) -> None:
        self.problems = list(problems)
        self.truncated = truncated
        super().__init__(self.render())

    def render(self) -> str:
        """Return one line per problem."""
        lines = [str(p) for p in self.problems]
        if self.truncated:
            lines.append(f"(stopped after {len(self.problems)} problems; fix these and run again)")
        return "\n".join(lines)


class ProblemCollector:
    """Collect problems of one file and raise them together.

    Examples
    --------
    >>> pc = ProblemCollector("a.csv")
    >>> pc.add("not a number", row=2, column="Arg", value="x")
    >>> len(pc)
    1
    """

    def __init__(self, file: str, limit: int = MAX_PROBLEMS) -> None:
        self.file = file
        self.limit = limit
        self.problems: list[Problem] = []
        self.truncated = False

    def add(
        self,
        message: str,
        row: int | None = None,
        column: str | None = None,
        value: object = None,
    ) -> None:
        """Record a problem (silently dropped beyond the limit)."""
        if len(self.problems) >= self.limit:
            self.truncated = True
            return
        self.problems.append(Problem(self.file, message, row, column, value))

    def full(self) -> bool:
        """Whether the limit has been reached."""
        return len(self.problems) >= self.limit

    def __len__(self) -> int:
        return len(self.problems)

    def raise_if_any(self) -> None:
        """Raise :class:`InputError` if any problem was recorded."""
        if self.problems:
            raise InputError(self.problems, self.truncated)
