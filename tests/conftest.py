"""Shared fixtures: stores on SQLite and (when a server is available) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hikisig.cohort.store import Store

DATA = Path(__file__).parent / "data"
SACURINE = DATA / "sacurine" / "sacurine_dataMatrix.tsv"
GASTRIC = DATA / "gastric_cancer_nmr" / "GastricCancer_NMR.xlsx"
PG_URL = os.environ.get("HIKISIG_TEST_PG_URL")


def pytest_report_header(config: pytest.Config) -> str:
    if PG_URL:
        return f"PostgreSQL store tests: {PG_URL}"
    return ("NOTICE: HIKISIG_TEST_PG_URL is not set: PostgreSQL store tests are SKIPPED "
            "(run `make test`, which starts a throwaway server)")


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "store.db")
    store.init()
    yield store
    store.dispose()


def _pg_database() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("PostgreSQL not available (HIKISIG_TEST_PG_URL unset)")
    from sqlalchemy import create_engine, text

    from hikisig.cohort.store import db_url

    admin = create_engine(db_url(PG_URL), isolation_level="AUTOCOMMIT")
    name = f"hikisig_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_database()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An initialised, empty store on each backend."""
    if request.param == "sqlite":
        s = Store(tmp_path / "store.db")
        s.init()
        yield s
        s.dispose()
        return
    gen = _pg_database()
    url = next(gen)
    s = Store(url)
    s.init()
    try:
        yield s
    finally:
        s.dispose()
        for _ in gen:
            pass


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`hikisig demo` once per session, with reduced resampling; returns its folder."""
    from helpers import hikisig

    out = tmp_path_factory.mktemp("demo") / "d"
    reduced = ["--set", "discriminate.cv_repeats=1", "--set", "discriminate.permutations=50",
               "--set", "discriminate.n_estimators=50", "--set", "severity.cv_repeats=1",
               "--set", "severity.permutations=10", "--set", "stratify.bootstraps=5"]
    r = hikisig("-q", "demo", "--out", str(out), *reduced)
    assert r.returncode == 0, r.stderr
    (out / "stdout.txt").write_text(r.stdout)
    return out
