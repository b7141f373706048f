"""The study config: one TOML file that names the data, the design and every analysis.

Validated with pydantic; an unknown key is an error that suggests the nearest
valid one. ``hikisig config init`` writes a commented starting config.
"""

from __future__ import annotations

import difflib
import hashlib
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hikisig.errors import HikisigError

__all__ = ["DEFAULT_CONFIG", "StudyConfig", "load_config", "parse_overrides"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source(_Section):
    """Where the data come from: a store (``db`` + study name) or a wide CSV ``file``."""

    db: str | None = None
    study: str | None = None
    file: str | None = None
    id_column: str | None = None
    criteria: str | None = None


class Design(_Section):
    """Columns of the design."""

    group: str = "group"
    case: str = "case"
    control: str = "control"
    sex: str | None = "sex"
    covariates: list[str] = ["age"]
    participant: str | None = "participant"
    severity: str | None = "hq25"
    instruments: list[str] = ["hq25", "phq9", "k6", "ucla3"]


class Preprocessing(_Section):
    """Steps before the analyses (the models add their own, fitted inside CV)."""

    max_missing: float = Field(default=0.5, ge=0, le=1)
    #: scale of the stored values; logged data are brought back to the linear scale
    input_scale: Literal["linear", "log10", "log2", "ln"] = "linear"


class StatsSection(_Section):
    """Univariate case-control statistics."""

    enabled: bool = True
    tests: list[Literal["welch", "student", "mwu"]] = ["welch", "mwu"]
    mwu_method: Literal["asymptotic", "exact"] = "asymptotic"


class DiscriminateSection(_Section):
    """Case vs control classifier."""

    enabled: bool = True
    model: Literal["rf", "logistic", "plsda"] = "rf"
    cv_folds: int = Field(default=5, ge=2)
    cv_repeats: int = Field(default=5, ge=1)
    permutations: int = Field(default=1000, ge=0)
    n_estimators: int = Field(default=200, ge=10)


class SeveritySection(_Section):
    """PLS regression of the severity score."""

    enabled: bool = True
    cases_only: bool = True
    scaling: Literal["pareto", "auto", "centre"] = "pareto"
    cv_repeats: int = Field(default=5, ge=1)
    permutations: int = Field(default=200, ge=0)


class StratifySection(_Section):
    """Clustering of cases."""

    enabled: bool = True
    method: Literal["gmm", "kmeans", "ward"] = "gmm"
    k: int | None = None
    bootstraps: int = Field(default=50, ge=0)


class Screening(_Section):
    """Population figures for prevalence-aware metrics."""

    prevalence: float = Field(default=0.0157, gt=0, lt=1)


class RunSection(_Section):
    """Seed, engine, output."""

    seed: int = 2021
    engine: Literal["serial", "loky", "dask"] = "serial"
    scheduler: str | None = None
    workers: int | None = Field(default=None, ge=1)
    out: str = "hikisig-output"


class StudyConfig(_Section):
    """A whole study config."""

    source: Source = Source()
    design: Design = Design()
    preprocessing: Preprocessing = Preprocessing()
    stats: StatsSection = StatsSection()
    discriminate: DiscriminateSection = DiscriminateSection()
    severity: SeveritySection = SeveritySection()
    stratify: StratifySection = StratifySection()
    screening: Screening = Screening()
    run: RunSection = RunSection()


def _valid_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc[:-1]:
        field = current.model_fields.get(str(part)) if hasattr(current, "model_fields") else None
        ann = getattr(field, "annotation", None)
        if not isinstance(ann, type) or not issubclass(ann, BaseModel):
            return []
        current = ann
    return list(current.model_fields) if hasattr(current, "model_fields") else []


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``section.key=value`` strings (values in TOML syntax, bare words as strings).

    Examples
    --------
    >>> parse_overrides(["discriminate.cv_repeats=2", "run.engine=loky"])
    {'discriminate.cv_repeats': 2, 'run.engine': 'loky'}
    """
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise HikisigError(f"--set {item!r}: expected section.key=value")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value.strip()
    return out


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> tuple[StudyConfig, str]:
    """Read and validate a study config; returns it and the file's sha256.

    ``overrides`` (``{"section.key": value}``) replace entries of the file; they are
    part of the recorded sha256.

    Raises
    ------
    HikisigError
        Unreadable TOML, or every invalid entry (an unknown key names the nearest
        valid one).
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError as exc:
        raise HikisigError(f"{p}: file not found (write one with `hikisig config init`)") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise HikisigError(f"{p}: not valid TOML: {exc}") from exc
    for dotted, value in (overrides or {}).items():
        node = data
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise HikisigError(f"--set {dotted}: {part!r} is not a section")
        node[parts[-1]] = value
    if overrides:
        raw = raw + repr(sorted(overrides.items())).encode()
    try:
        config = StudyConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e["loc"])
            if e["type"] == "extra_forbidden":
                keys = _valid_keys(StudyConfig, tuple(e["loc"]))
                near = difflib.get_close_matches(str(e["loc"][-1]), keys, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else f"; valid keys: {', '.join(keys)}"
                lines.append(f"{p}: unknown key {where!r}{hint}")
            else:
                lines.append(f"{p}: {where}: {e['msg']}")
        raise HikisigError("\n".join(lines)) from exc
    if config.source.file is None and config.source.db is None:
        config.source.db = "hikisig.db"
    return config, hashlib.sha256(raw).hexdigest()


#: The commented starting config written by ``hikisig config init``.
DEFAULT_CONFIG = '''# hikisig study config. Every key is optional; these are the defaults.
# Run with: hikisig run study.toml [--out DIR]

[source]
db = "hikisig.db"            # the store (SQLite path or postgresql://...); or use file =
# study = "my-study"         # study in the store (default: the only one)
# file = "cohort.csv"        # a wide CSV instead: id column, metadata columns, analytes
# id_column = "id"
# criteria = "criteria.csv"  # inputs of the 2020 criteria (see hikisig assess criteria);
                             # default with a store: the criteria recorded at visits

[design]
group = "group"              # column with the group labels
case = "case"
control = "control"
sex = "sex"                  # statistics are run overall and within each sex
covariates = ["age"]         # covariates of log2(value) ~ group * sex + covariates
participant = "participant"  # several samples of a participant stay in one CV fold
severity = "hq25"            # instrument (store) or column (file) used as severity
instruments = ["hq25", "phq9", "k6", "ucla3"]   # questionnaires summarised in the report

[preprocessing]
max_missing = 0.5            # drop analytes missing in more than this share of samples
input_scale = "linear"       # or log10 / log2 / ln when the data are already logged
# (models then impute half-minimum, take log2 and scale inside each training fold)

[stats]
enabled = true
tests = ["welch", "mwu"]     # welch, student, mwu
mwu_method = "asymptotic"    # or "exact" (small samples without ties)

[discriminate]
enabled = true
model = "rf"                 # rf, logistic, plsda
cv_folds = 5
cv_repeats = 5
permutations = 1000
n_estimators = 200

[severity]
enabled = true
cases_only = true            # HQ-25 total within cases, as in the study
scaling = "pareto"
cv_repeats = 5
permutations = 200

[stratify]
enabled = true
method = "gmm"               # gmm, kmeans, ward
# k = 2                      # default: chosen by BIC / silhouette
bootstraps = 50

[screening]
prevalence = 0.0157          # 1.57%: Japan, ages 15-39 (Cabinet Office 2015)

[run]
seed = 2021
engine = "serial"            # serial, loky, dask (same results)
# scheduler = "tcp://host:8786"  # an existing Dask cluster (engine = "dask")
# workers = 2                # loky, or a local Dask cluster: worker processes (default: CPUs)
out = "hikisig-output"
'''
