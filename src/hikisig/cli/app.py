"""The Typer application and its command groups."""

from __future__ import annotations

from typing import Annotated

import typer

from hikisig.cli.common import GlobalOptions
from hikisig.versions import __version__

__all__ = ["app", "assess_app", "import_app"]

app = typer.Typer(
    name="hikisig",
    help="Blood metabolic signatures of hikikomori: cohort store, assessment, import, export "
         "and analysis.\n\nExample: hikisig --db study.db init",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
import_app = typer.Typer(help="Import participants, measurements or questionnaire responses.\n\n"
                         "Example: hikisig --db study.db import measurements lab.csv",
                         no_args_is_help=True)
assess_app = typer.Typer(help="Questionnaires and the 2020 diagnostic criteria.\n\n"
                         "Example: hikisig assess score --instrument phq9 answers.csv",
                         no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(assess_app, name="assess")


def _version(value: bool) -> None:
    if value:
        print(f"hikisig {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    db: Annotated[str | None, typer.Option(
        "--db", envvar="HIKISIG_DB",
        help="SQLite file or database URL (postgresql://user@host/db). Default: hikisig.db")] = None,
    study: Annotated[str | None, typer.Option(
        "--study", envvar="HIKISIG_STUDY", help="Study name (default: 'default').")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Blood metabolic signatures of hikikomori."""
    ctx.obj = GlobalOptions(db=db, study=study, quiet=quiet)
