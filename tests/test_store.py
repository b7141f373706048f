"""The store: schema by migrations, both backends, readiness checks."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from hikisig.cohort import schema
from hikisig.cohort.store import Store, StoreError, db_url


def test_init_creates_every_table_at_head(store):
    names = set(inspect(store.engine).get_table_names())
    assert {t.name for t in schema.Base.metadata.sorted_tables} <= names
    assert store.revision() == Store.head_revision()
    assert store.init() == Store.head_revision()  # idempotent


def test_migrations_match_models(store):
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), schema.Base.metadata)
    assert diff == []


def test_sqlite_uses_wal(sqlite_store):
    with sqlite_store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_uninitialised_store_is_refused(tmp_path):
    with pytest.raises(StoreError, match="not initialised"):
        Store(tmp_path / "new.db").require_ready()


def test_missing_folder_is_clear(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "nope" / "x.db")


def test_db_url_forms(monkeypatch):
    monkeypatch.delenv("HIKISIG_DB", raising=False)
    assert db_url(None) == "sqlite:///hikisig.db"
    monkeypatch.setenv("HIKISIG_DB", "/data/h.db")
    assert db_url(None) == "sqlite:////data/h.db"
    assert db_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert db_url("sqlite:///x.db") == "sqlite:///x.db"


def test_codes_unique_within_a_study(store):
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), store.session() as s:
        st = store.study(s, "a", create=True)
        s.add_all([schema.Participant(study_id=st.id, code="P1", attributes={}),
                   schema.Participant(study_id=st.id, code="P1", attributes={})])
        s.flush()
    assert store.row_counts()["participant"] == 0


def test_upgrade_from_first_revision_keeps_data(tmp_path):
    from alembic import command

    from hikisig.cohort.store import _alembic_config

    store = Store(tmp_path / "old.db")
    with store.engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0001")
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO study (name, synthetic, created_at) VALUES ('kept', 0, '2026-01-01')"))
    assert store.revision() == "0001"
    with pytest.raises(StoreError, match=r"run `hikisig --db \.\.\. init` to upgrade"):
        store.require_ready()
    assert store.init() == Store.head_revision()
    assert store.study_names() == ["kept"]
