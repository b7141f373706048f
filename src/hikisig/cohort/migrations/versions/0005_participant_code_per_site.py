"""participant codes unique per study and site

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 05:50:00.000000

Two sites of a study may each have a participant ``A-001``. The unique constraint
on (study_id, code) becomes (study_id, site_id, code); participants without a site
keep a code unique within the study through a partial unique index. Existing data
satisfy both (they were unique per study), so the upgrade never fails on them.
SQLite cannot alter constraints: batch mode copies the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WITHOUT_SITE = sa.text("site_id IS NULL")


def _foreign_keys(on: bool) -> None:
    """On SQLite, batch mode copies ``participant`` and drops the old table while visits,
    interventions... refer to it; the copy keeps every id, so the references hold again once
    it is renamed, but they must not be checked at the DROP. ``PRAGMA foreign_keys = OFF``
    does that, and SQLite ignores it inside a transaction: when earlier revisions of the same
    upgrade left one open, it is committed first (those revisions are complete and recorded).
    ``PRAGMA foreign_key_check`` then proves nothing was left dangling."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if on:
        bad = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if bad:  # pragma: no cover - the copy keeps ids
            raise RuntimeError(f"foreign keys broken by revision 0005: {bad[:5]}")
    raw = bind.connection.dbapi_connection
    if raw is not None and getattr(raw, "in_transaction", False):
        raw.commit()
    bind.exec_driver_sql(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar() != int(on):  # pragma: no cover
        raise RuntimeError("revision 0005 could not switch SQLite foreign keys")


def upgrade() -> None:
    """Apply this revision."""
    _foreign_keys(on=False)
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.drop_constraint("uq_participant_study_id", type_="unique")
        batch_op.create_unique_constraint("uq_participant_study_id", ["study_id", "site_id", "code"])
        batch_op.create_index("ix_participant_code_without_site", ["study_id", "code"], unique=True,
                              sqlite_where=_WITHOUT_SITE, postgresql_where=_WITHOUT_SITE)
    _foreign_keys(on=True)


def downgrade() -> None:
    """Revert this revision (fails when two sites share a code: merge or rename them first)."""
    _foreign_keys(on=False)
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.drop_index("ix_participant_code_without_site")
        batch_op.drop_constraint("uq_participant_study_id", type_="unique")
        batch_op.create_unique_constraint("uq_participant_study_id", ["study_id", "code"])
    _foreign_keys(on=True)
