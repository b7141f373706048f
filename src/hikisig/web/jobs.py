"""Analyses in the background: each job runs ``hikisig run`` in a worker process.

A job row holds the options, the stage reached and the progress (0-1); the
worker updates it as the pipeline reports its stages, so any page or API call
can show progress. Outputs (report.html, tables/, models/) go to
``WORK_DIR/jobs/<id>/results``.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import re
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hikisig.cohort import schema
from hikisig.cohort.store import Store

if TYPE_CHECKING:
    from hikisig.config import StudyConfig

__all__ = ["JobRunner", "failure_reason", "job_config", "run_job"]

log = logging.getLogger("hikisig.web.jobs")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def job_config(db_url: str, study: str, options: dict[str, Any]) -> StudyConfig:
    """The study config of a job: the store and study, the default settings, and the
    analyst's options (``section.key`` -> value, see :data:`hikisig.web.analyses.JOB_OPTIONS`)."""
    from hikisig.config import validate_config

    return validate_config({"source": {"db": db_url, "study": study}}, "analysis options", options)


def _set(store: Store, job_id: int, **values: Any) -> None:
    with store.session() as s:
        s.execute(update(schema.AnalysisJob).where(schema.AnalysisJob.id == job_id).values(**values))


def run_job(db_url: str, job_id: int, work_dir: str) -> None:
    """Run one job (in a worker process): config, pipeline, outputs, status."""
    from hikisig.pipeline.run import execute
    from hikisig.results import STAGES

    store = Store(db_url)
    with Session(store.engine) as s:
        job = s.get(schema.AnalysisJob, job_id)
        if job is None:
            return
        study, options = job.study, dict(job.options or {})
    folder = Path(work_dir) / "jobs" / str(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    _set(store, job_id, status="running", stage="data", progress=0.0)
    stage = ["data"]
    try:
        from hikisig.config import config_sha256, render_config

        config = job_config(db_url, study, options)
        (folder / "study.toml").write_text(render_config(config))

        def progress(name: str) -> None:
            stage[0] = name
            _set(store, job_id, stage=name, progress=STAGES.index(name) / len(STAGES))

        _, out = execute(config, folder / "results", config_sha256=config_sha256(config),
                         base=folder, progress=progress)
        _set(store, job_id, status="done", stage="done", progress=1.0, out_dir=str(out),
             finished_at=_now(), message=None)
    except Exception as exc:  # the job fails, the server does not: the traceback goes to the log only
        log.error("analysis job %s of study %r failed in the %s stage", job_id, study, stage[0],
                  exc_info=True)
        _set(store, job_id, status="failed", finished_at=_now(),
             message=failure_reason(exc, stage[0], job_id, _codes(store, study)))
    finally:
        store.dispose()


def _codes(store: Store, study: str) -> set[str]:
    """The participant and sample codes of a study (kept out of what the page shows)."""
    try:
        with Session(store.engine) as s:
            st = s.scalar(select(schema.Study.id).where(schema.Study.name == study))
            if st is None:
                return set()
            return (set(s.scalars(select(schema.Participant.code).where(schema.Participant.study_id == st)))
                    | set(s.scalars(select(schema.Sample.code).where(schema.Sample.study_id == st))))
    except Exception:  # pragma: no cover - the store itself is what failed
        return set()


def failure_reason(exc: BaseException, stage: str, job_id: int, codes: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    """One line saying why a job failed, for analysts and auditors: the first line of a
    :class:`~hikisig.errors.HikisigError` (a problem of the data or settings), else the kind of
    internal error and where to look. Participant and sample codes are masked; the traceback
    is only in the server log."""
    from hikisig.errors import HikisigError

    if isinstance(exc, HikisigError):
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        text = f"{first} (stage {stage})"
    else:
        text = (f"internal error ({type(exc).__name__}) in the {stage} stage; "
                f"the details are in the server log (job {job_id})")
    for code in sorted((c for c in codes if len(c) >= 2), key=len, reverse=True):
        text = re.sub(rf"(?<![\w-]){re.escape(code)}(?![\w-])", "[code]", text)
    return text[:300]


class JobRunner:
    """A pool of worker processes running analysis jobs."""

    def __init__(self, store: Store, work_dir: Path, workers: int = 1) -> None:
        self.store, self.work_dir = store, Path(work_dir)
        self._pool: ProcessPoolExecutor | None = None
        self.workers = workers
        self.futures: dict[int, Future[None]] = {}
        with store.session() as s:  # jobs cut short by a previous server stop
            s.execute(update(schema.AnalysisJob)
                      .where(schema.AnalysisJob.status.in_(("queued", "running")))
                      .values(status="failed", message="the server stopped before the job finished",
                              finished_at=_now()))

    def submit(self, job_id: int) -> None:
        """Queue a job (its row must exist)."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers,
                                             mp_context=multiprocessing.get_context("spawn"))
        self.futures[job_id] = self._pool.submit(run_job, self.store.url, job_id, str(self.work_dir))

    def active(self) -> list[int]:
        """Ids of jobs queued or running in this server."""
        with Session(self.store.engine) as s:
            return list(s.scalars(select(schema.AnalysisJob.id)
                                  .where(schema.AnalysisJob.status.in_(("queued", "running")))))

    def shutdown(self) -> None:
        """Stop the workers (running jobs are abandoned)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
