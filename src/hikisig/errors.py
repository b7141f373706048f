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
           "RunFailedError", "TooFewSamplesError"]

#: Stop collecting problems of one file after this many.
MAX_PROBLEMS = 50


class HikisigError(Exception):
    """Base class of every error hikisig reports to a user."""


class AlignmentError(HikisigError, ValueError):
    """Per-sample values that do not line up with the samples of the data (a Series whose
    index lacks some sample ids, or an array of the wrong length)."""


class RunFailedError(HikisigError):
    """A stage of a study run failed after the earlier stages finished; their tables, a report
    and ``provenance.json`` (with the failed stage) are in ``folder`` and, in Python, in
    ``results``. ``internal`` marks a fault in hikisig itself (its traceback is in
    ``folder/error.log``), not in the input."""

    def __init__(self, message: str, stage: str, folder: str, internal: bool = False) -> None:
        super().__init__(message)
        self.stage, self.folder, self.internal = stage, folder, internal
        #: the results of the finished stages (a :class:`hikisig.results.RunResults`), when any
        self.results: object = None


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
        The problems listed (at most :data:`MAX_PROBLEMS`).
    truncated : bool
        Whether more problems were found than are listed (their number unknown).
    total : int, optional
        How many problems were found in all (more than are listed when the list was cut).

    Examples
    --------
    >>> err = InputError([Problem("a.csv", "not a number", row=2)], total=58)
    >>> print(err.render())
    a.csv: row 2: not a number
    ... and 57 more problems (fix these and run again)
    """

    def __init__(self, problems: list[Problem], truncated: bool = False,
                 total: int | None = None) -> None:
        self.problems = list(problems)
        self.total = max(total if total is not None else len(self.problems), len(self.problems))
        self.truncated = truncated or self.total > len(self.problems)
        super().__init__(self.render())

    def render(self) -> str:
        """Return one line per problem, and how many more there are when the list was cut."""
        lines = [str(p) for p in self.problems]
        more = self.total - len(self.problems)
        if more > 0:
            lines.append(f"... and {more} more problem{'s' if more != 1 else ''} (fix these and run "
                         "again)")
        elif self.truncated:
            lines.append(f"(stopped after {len(self.problems)} problems; fix these and run again)")
        return "\n".join(lines)


class ProblemCollector:
    """Collect problems of one file and raise them together; beyond ``limit`` problems are
    counted, not listed.

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
        self.total = 0

    @property
    def truncated(self) -> bool:
        """Whether more problems were found than are listed."""
        return self.total > len(self.problems)

    def add(
        self,
        message: str,
        row: int | None = None,
        column: str | None = None,
        value: object = None,
    ) -> None:
        """Record a problem (counted, not listed, beyond the limit)."""
        self.total += 1
        if len(self.problems) >= self.limit:
            return
        self.problems.append(Problem(self.file, message, row, column, value))

    def count(self, n: int) -> None:
        """Count ``n`` further problems of the same kind that are not listed one by one."""
        self.total += max(0, int(n))

    def extend(self, other: ProblemCollector) -> None:
        """Take over another collector's count (its problems are added by the caller)."""
        self.total += other.total - len(other.problems)

    def full(self) -> bool:
        """Whether the limit has been reached."""
        return len(self.problems) >= self.limit

    def __len__(self) -> int:
        return len(self.problems)

    def raise_if_any(self) -> None:
        """Raise :class:`InputError` if any problem was recorded."""
        if self.problems:
            raise InputError(self.problems, total=self.total)
