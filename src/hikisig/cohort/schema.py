"""The cohort store's tables (SQLAlchemy 2 declarative models).

The schema is created and upgraded by the Alembic migrations in
``hikisig/cohort/migrations``; a test checks that the migrations and these
models agree. Every table that a study owns carries ``study_id`` directly or
through its parent, and codes (participant, sample, analyte key) are unique
within a study, so several studies share one database safely.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AUDIT_ACTIONS",
    "FLAGS",
    "INTERVENTION_KINDS",
    "ROLES",
    "SAMPLE_TYPES",
    "SEXES",
    "AnalysisJob",
    "Analyte",
    "AppSetting",
    "Assessment",
    "AuditEvent",
    "Base",
    "CriteriaRecord",
    "ImportLog",
    "Intervention",
    "Measurement",
    "Participant",
    "RegisteredModel",
    "Sample",
    "Site",
    "Study",
    "User",
    "Visit",
    "WebSession",
]

#: Allowed values of ``measurement.flag``.
FLAGS = ("below_lod", "above_uloq", "missing")
#: Allowed values of ``sample.sample_type``.
SAMPLE_TYPES = ("study", "qc", "blank")
#: Allowed values of ``intervention.kind``.
INTERVENTION_KINDS = ("psychotherapy", "family_support", "online_programme", "social_robot", "medication",
                      "day_programme", "other")
#: Allowed values of ``participant.sex``.
SEXES = ("M", "F")
#: Roles of web-app users.
ROLES = ("admin", "clinician", "analyst", "auditor")
#: Actions recorded in the audit trail.
AUDIT_ACTIONS = ("create", "update", "delete", "view", "export", "import", "login", "login_failed",
                 "logout", "lockout", "run", "audit_key")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    """Declarative base with a stable constraint naming convention."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON}


class Study(Base):
    """A study: the unit that owns participants, samples and analytes."""

    __tablename__ = "study"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class Site(Base):
    """A recruiting site (clinic) of a study."""

    __tablename__ = "site"
    __table_args__ = (UniqueConstraint("study_id", "code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str | None] = mapped_column(String(200))


class Participant(Base):
    """A participant, known by a pseudonymous code unique within the study and site.

    Two sites of a study may each have a participant ``A-001`` (revision 0005); a code
    is unique among the participants of a study without a site (a partial unique index).
    """

    __tablename__ = "participant"
    __table_args__ = (
        UniqueConstraint("study_id", "site_id", "code"),
        Index("ix_participant_code_without_site", "study_id", "code", unique=True,
              sqlite_where=text("site_id IS NULL"), postgresql_where=text("site_id IS NULL")),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id"))
    code: Mapped[str] = mapped_column(String(100))
    sex: Mapped[str | None] = mapped_column(String(1))
    age: Mapped[float | None] = mapped_column(Float)
    birth_year: Mapped[int | None] = mapped_column(Integer)
    group_label: Mapped[str | None] = mapped_column(String(100))
    medication_free: Mapped[bool | None] = mapped_column(Boolean)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class Visit(Base):
    """A visit of a participant, numbered from 1."""

    __tablename__ = "visit"
    __table_args__ = (UniqueConstraint("participant_id", "visit_index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    visit_index: Mapped[int] = mapped_column(Integer)
    visit_date: Mapped[dt.date | None] = mapped_column(Date)


class Intervention(Base):
    """A treatment a participant received (or receives): ``end`` NULL while it is ongoing.

    ``kind`` is one of :data:`INTERVENTION_KINDS`; one participant has at most one
    intervention of a kind starting on a given day (re-imports update it).
    """

    __tablename__ = "intervention"
    __table_args__ = (UniqueConstraint("participant_id", "kind", "start"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    start: Mapped[dt.date] = mapped_column(Date)
    end: Mapped[dt.date | None] = mapped_column(Date)
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class Sample(Base):
    """A biological (or QC/blank) sample; QC and blank samples have no visit."""

    __tablename__ = "sample"
    __table_args__ = (UniqueConstraint("study_id", "code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visit.id"), index=True)
    code: Mapped[str] = mapped_column(String(200))
    matrix: Mapped[str | None] = mapped_column(String(50))
    batch: Mapped[str | None] = mapped_column(String(100))
    injection_order: Mapped[int | None] = mapped_column(Integer)
    sample_type: Mapped[str] = mapped_column(String(10), default="study")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Analyte(Base):
    """An analyte as measured in a study, linked to the catalog when known."""

    __tablename__ = "analyte"
    __table_args__ = (UniqueConstraint("study_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    catalog_id: Mapped[str | None] = mapped_column(String(100))
    display_name: Mapped[str] = mapped_column(String(300))
    source_name: Mapped[str | None] = mapped_column(String(300))
    unit: Mapped[str | None] = mapped_column(String(50))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ImportLog(Base):
    """One successful import: what came in, from which file, when."""

    __tablename__ = "import_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    file_name: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    file_format: Mapped[str | None] = mapped_column(String(20))
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    n_values: Mapped[int] = mapped_column(Integer, default=0)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Measurement(Base):
    """One value of one analyte in one sample.

    ``value`` is in the analyte's stored unit; it is NULL when ``flag`` says
    why (below the limit of detection, above the upper limit of
    quantification, or a missing-value code), and ``raw`` keeps the text
    that was read in that case.
    """

    __tablename__ = "measurement"
    sample_id: Mapped[int] = mapped_column(ForeignKey("sample.id"), primary_key=True)
    analyte_id: Mapped[int] = mapped_column(ForeignKey("analyte.id"), primary_key=True, index=True)
    value: Mapped[float | None] = mapped_column(Float)
    flag: Mapped[str | None] = mapped_column(String(12))
    raw: Mapped[str | None] = mapped_column(String(100))
    import_id: Mapped[int | None] = mapped_column(ForeignKey("import_log.id"))


class Assessment(Base):
    """A questionnaire record at a visit: raw answers, the version, and computed scores."""

    __tablename__ = "assessment"
    __table_args__ = (UniqueConstraint("visit_id", "instrument"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visit.id"), index=True)
    instrument: Mapped[str] = mapped_column(String(50))
    version: Mapped[str | None] = mapped_column(String(50))
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: sha256 of the instrument definition the scores were computed with
    definition_sha256: Mapped[str | None] = mapped_column(String(64))
    import_id: Mapped[int | None] = mapped_column(ForeignKey("import_log.id"))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class CriteriaRecord(Base):
    """The 2020 diagnostic criteria as checked at a visit, with the resulting status."""

    __tablename__ = "criteria_record"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visit.id"), unique=True)
    days_out_per_week: Mapped[float] = mapped_column(Float)
    rarely_leaves_room: Mapped[bool] = mapped_column(Boolean)
    months_isolated: Mapped[float] = mapped_column(Float)
    impairment: Mapped[bool] = mapped_column(Boolean)
    distress: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(20))
    reasons: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class User(Base):
    """A user of the web app; ``site`` is the site code a clinician works at."""

    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    site: Mapped[str | None] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_login: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class WebSession(Base):
    """A signed-in browser session; ``id`` is the sha256 of the cookie's token."""

    __tablename__ = "web_session"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class AuditEvent(Base):
    """One entry of the append-only, hash-chained audit trail.

    ``hash`` is the sha256 of ``prev_hash`` and the entry's canonical JSON, so
    editing, inserting or deleting an entry breaks the chain
    (``hikisig audit verify``).
    """

    __tablename__ = "audit_event"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(20))
    entity: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str | None] = mapped_column(String(200))
    study: Mapped[str | None] = mapped_column(String(200))
    site: Mapped[str | None] = mapped_column(String(100))
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AnalysisJob(Base):
    """An analysis run in the web app's background worker."""

    __tablename__ = "analysis_job"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    stage: Mapped[str | None] = mapped_column(String(50))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str | None] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    out_dir: Mapped[str | None] = mapped_column(String(1000))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class RegisteredModel(Base):
    """A saved model (a ``hikisig model ... --out`` folder) registered for predictions."""

    __tablename__ = "registered_model"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    study: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    path: Mapped[str] = mapped_column(String(1000))
    registered_by: Mapped[str] = mapped_column(String(100))
    registered_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class AppSetting(Base):
    """Server settings kept in the store (the pseudonymisation key)."""

    __tablename__ = "app_setting"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
