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
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "FLAGS",
    "SAMPLE_TYPES",
    "SEXES",
    "Analyte",
    "Assessment",
    "Base",
    "ImportLog",
    "Measurement",
    "Participant",
    "Sample",
    "Site",
    "Study",
    "Visit",
]

#: Allowed values of ``measurement.flag``.
FLAGS = ("below_lod", "above_uloq", "missing")
#: Allowed values of ``sample.sample_type``.
SAMPLE_TYPES = ("study", "qc", "blank")
#: Allowed values of ``participant.sex``.
SEXES = ("M", "F")

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
    """A participant, known by a pseudonymous code unique within the study."""

    __tablename__ = "participant"
    __table_args__ = (UniqueConstraint("study_id", "code"),)
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
