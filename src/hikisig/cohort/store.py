"""Opening, creating and upgrading the cohort store.

A store is a SQLAlchemy database: SQLite by default (a file path, WAL mode,
foreign keys on) or PostgreSQL by URL (``postgresql+psycopg://...``), through
the same code. Its schema is managed by Alembic migrations shipped inside the
package.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from hikisig.cohort import schema
from hikisig.errors import HikisigError

__all__ = ["DEFAULT_DB", "Store", "StoreError", "db_url", "query_frame"]

#: Database used when neither ``--db`` nor ``HIKISIG_DB`` is given.
DEFAULT_DB = "hikisig.db"


class StoreError(HikisigError):
    """The store cannot be opened or is not in the state an operation needs."""


def db_url(db: str | os.PathLike[str] | None = None) -> str:
    """Turn a ``--db`` value (path or URL) into a SQLAlchemy URL.

    Parameters
    ----------
    db : str or path, optional
        A database URL (anything with ``://``) or the path of a SQLite file.
        Defaults to ``$HIKISIG_DB``, then ``hikisig.db`` in the working folder.

    Examples
    --------
    >>> db_url("study.db")
    'sqlite:///study.db'
    >>> db_url("postgresql://u@localhost/h")
    'postgresql+psycopg://u@localhost/h'
    """
    value = str(db) if db is not None else os.environ.get("HIKISIG_DB") or DEFAULT_DB
    if "://" not in value:
        return f"sqlite:///{value}"
    if value.startswith("postgresql://") or value.startswith("postgres://"):
        return "postgresql+psycopg://" + value.split("://", 1)[1]
    return value


def query_frame(session: Session, stmt: Any) -> pd.DataFrame:
    """Run a select and return its rows as a DataFrame (columns named by the select)."""
    res = session.execute(stmt)
    return pd.DataFrame(res.fetchall(), columns=list(res.keys()))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    location = resources.files("hikisig.cohort") / "migrations"
    cfg.set_main_option("script_location", str(location))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


class Store:
    """A cohort store.

    Parameters
    ----------
    db : str or path, optional
        Path of a SQLite file or a database URL (see :func:`db_url`).

    Examples
    --------
    >>> store = Store(":memory:")  # doctest: +SKIP
    >>> store.init()               # doctest: +SKIP
    """

    def __init__(self, db: str | os.PathLike[str] | None = None) -> None:
        self.url = db_url(db)
        url = make_url(self.url)
        self.dialect = url.get_backend_name()
        if self.dialect == "sqlite":
            database = url.database or ""
            if database and database != ":memory:":
                parent = Path(database).expanduser().resolve().parent
                if not parent.is_dir():
                    raise StoreError(f"cannot open database {database!r}: folder {parent} does not exist")
        try:
            self.engine: Engine = create_engine(self.url, future=True)
        except Exception as exc:
            raise StoreError(f"cannot open database {self.display_url}: {exc}") from exc
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    @property
    def display_url(self) -> str:
        """The URL with any password hidden."""
        return make_url(self.url).render_as_string(hide_password=True)

    # -- schema -----------------------------------------------------------
    def init(self) -> str:
        """Create the schema, or upgrade it to the newest revision.

        Returns
        -------
        str
            The schema revision now in place.
        """
        try:
            with self.engine.begin() as conn:
                command.upgrade(_alembic_config(conn), "head")
        except HikisigError:
            raise
        except Exception as exc:
            raise StoreError(f"cannot initialise {self.display_url}: {exc}") from exc
        rev = self.revision()
        if rev is None:  # pragma: no cover - upgrade always stamps
            raise StoreError("schema upgrade did not record a revision")
        return rev

    def revision(self) -> str | None:
        """The schema revision of the database, or None if not initialised."""
        try:
            with self.engine.connect() as conn:
                return MigrationContext.configure(conn).get_current_revision()
        except Exception as exc:
            raise StoreError(f"cannot open database {self.display_url}: {exc}") from exc

    @staticmethod
    def head_revision() -> str:
        """The newest schema revision shipped with this version of hikisig."""
        head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
        if head is None:  # pragma: no cover
            raise StoreError("no schema migrations are shipped")
        return head

    def require_ready(self) -> None:
        """Raise :class:`StoreError` unless the schema is at the newest revision."""
        rev = self.revision()
        if rev is None:
            raise StoreError(
                f"database {self.display_url} is not initialised: run `hikisig --db ... init` first"
            )
        if rev != self.head_revision():
            raise StoreError(
                f"database {self.display_url} has schema {rev}, this hikisig needs "
                f"{self.head_revision()}: run `hikisig --db ... init` to upgrade"
            )

    # -- sessions ---------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            yield s

    def study(self, session: Session, name: str, create: bool = False,
              synthetic: bool = False) -> schema.Study:
        """Return the study called ``name`` (created if ``create``).

        ``synthetic`` marks the study as holding synthetic data (a study is never marked
        back as real): whether data are synthetic is a property of the data, recorded on
        import, not guessed from a name.
        """
        st = session.scalar(select(schema.Study).where(schema.Study.name == name))
        if st is None:
            if not create:
                names = self.study_names()
                hint = f"; studies here: {', '.join(names)}" if names else "; the store is empty"
                raise StoreError(f"no study named {name!r} in {self.display_url}{hint}")
            st = schema.Study(name=name, synthetic=synthetic)
            session.add(st)
            session.flush()
        elif synthetic and not st.synthetic:
            st.synthetic = True
        return st

    def only_study(self) -> str:
        """The name of the store's only study (the study read when none is named).

        Raises
        ------
        StoreError
            The store holds no study, or several (the message lists them).
        """
        names = self.study_names()
        if len(names) == 1:
            return str(names[0])
        if not names:
            raise StoreError(f"the store {self.display_url} holds no study yet: import data first")
        raise StoreError(f"the store holds several studies ({', '.join(names)}): choose one with "
                         "--study (source.study in a study config)")

    def study_names(self) -> list[str]:
        """Names of the studies in the store."""
        with Session(self.engine) as s:
            return list(s.scalars(select(schema.Study.name).order_by(schema.Study.id)))

    def row_counts(self) -> dict[str, int]:
        """Number of rows of every table (for checks and ``info``)."""
        out: dict[str, int] = {}
        with Session(self.engine) as s:
            for table in schema.Base.metadata.sorted_tables:
                out[table.name] = int(s.scalar(select(func.count()).select_from(table)) or 0)
        return out

    def dispose(self) -> None:
        """Close all pooled connections."""
        self.engine.dispose()
