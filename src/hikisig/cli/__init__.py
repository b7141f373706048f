"""The ``hikisig`` command line.

Every command reports problems in the user's input as one line each on
stderr and exits with code 2; it never shows a traceback for them.
"""

from __future__ import annotations

import sys

from hikisig.cli import assess as _assess  # noqa: F401  (registers commands)
from hikisig.cli import cohort as _cohort  # noqa: F401  (registers commands)
from hikisig.cli import compare as _compare  # noqa: F401  (registers commands)
from hikisig.cli import meta as _meta  # noqa: F401  (registers commands)
from hikisig.cli import model as _model  # noqa: F401  (registers commands)
from hikisig.cli import power as _power  # noqa: F401  (registers commands)
from hikisig.cli import run as _run  # noqa: F401  (registers commands)
from hikisig.cli import stats as _stats  # noqa: F401  (registers commands)
from hikisig.cli import synth as _synth  # noqa: F401  (registers commands)
from hikisig.cli import web as _web  # noqa: F401  (registers commands)
from hikisig.cli.app import app
from hikisig.cli.common import err
from hikisig.errors import HikisigError, InputError, RunFailedError

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``hikisig`` console script."""
    try:
        app(args=argv, prog_name="hikisig")
    except RunFailedError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(1 if exc.internal else 2)
    except InputError as exc:
        for line in exc.render().splitlines():
            err.print(f"error: {line}", markup=False)
        sys.exit(2)
    except HikisigError as exc:
        for line in str(exc).splitlines():
            err.print(f"error: {line}", markup=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted; nothing was written by the interrupted step")
        sys.exit(130)
