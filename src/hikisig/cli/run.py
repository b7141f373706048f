"""``hikisig config init``, ``hikisig run`` and ``hikisig demo``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from hikisig.cli.app import app
from hikisig.cli.common import err, options, out
from hikisig.errors import HikisigError

__all__ = ["config_init", "demo_cmd", "run_cmd"]

config_app = typer.Typer(help="Study config files.\n\nExample: hikisig config init study.toml",
                         no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("init")
def config_init(
    path: Annotated[Path, typer.Argument(help="Config file to write.")] = Path("study.toml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starting study config.

    Example: hikisig config init study.toml
    """
    from hikisig.config import DEFAULT_CONFIG

    if path.exists() and not force:
        raise HikisigError(f"{path} exists: use --force to overwrite")
    path.write_text(DEFAULT_CONFIG)
    out.print(f"wrote {path}")


def _execute(ctx: typer.Context, config_path: Path, out_dir: Path | None, quiet: bool,
             overrides: list[str] | None = None) -> Path:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from hikisig.config import load_config, parse_overrides
    from hikisig.pipeline.run import execute
    from hikisig.results import STAGES

    config, sha = load_config(config_path, parse_overrides(overrides or []))
    target = out_dir or (config_path.parent / config.run.out)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err, transient=True, disable=quiet or options(ctx).quiet) as bar:
        task = bar.add_task("starting", total=len(STAGES))

        def progress(stage: str) -> None:
            bar.update(task, description=stage, completed=STAGES.index(stage))

        results, folder = execute(config, target, config_sha256=sha,
                                  base=config_path.parent.resolve(), progress=progress)
    for stage, reason in results.skipped.items():
        err.print(f"note: {stage} did not run: {reason}", markup=False)
    for text in results.warnings:
        err.print(f"warning: {text}", markup=False)
    return folder


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="Study config (TOML).")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder "
                                                 "(default: run.out of the config).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
    overrides: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a config entry: section.key=value (repeatable).")] = None,
) -> None:
    """Run every analysis of a study config: report.html, tables/ (CSV and Parquet),
    models/ (skops + model cards) and provenance.json.

    Example: hikisig run study.toml --out results --set discriminate.permutations=200
    """
    t0 = time.perf_counter()
    folder = _execute(ctx, config, out_dir, quiet, overrides)
    out.print(f"report: {folder / 'report.html'} ({time.perf_counter() - t0:.0f} s)")


@app.command("demo")
def demo_cmd(
    ctx: typer.Context,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("hikisig-demo"),
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
    overrides: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a config entry: section.key=value (repeatable).")] = None,
) -> None:
    """Synthesise the default study into a fresh SQLite store, run the default config on it
    and print the report's path.

    Example: hikisig demo --out demo-output
    """
    from hikisig.config import RunSection, Source, StudyConfig, render_config
    from hikisig.synth import SyntheticStudy, preset, write_files, write_store

    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    db = out_dir / "demo.db"
    for f in (db, db.with_name("demo.db-wal"), db.with_name("demo.db-shm")):
        f.unlink(missing_ok=True)
    study = SyntheticStudy(preset())
    write_files(study, out_dir / "synthetic-study")
    write_store(study, str(db))
    config = StudyConfig(source=Source(db=db.name, criteria="synthetic-study/criteria.csv"),
                         run=RunSection(out="results"))
    config_path = out_dir / "study.toml"
    config_path.write_text(render_config(config))
    folder = _execute(ctx, config_path, None, quiet, overrides)
    out.print(f"demo study: {out_dir / 'synthetic-study'} (truth.json), store {db}, config "
              f"{config_path}")
    out.print(f"report: {folder / 'report.html'} ({time.perf_counter() - t0:.0f} s)")
