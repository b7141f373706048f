"""hikisig: blood metabolic signatures of hikikomori.

Assessment, a cohort store, importers and exporters, statistics, models and
reports for clinics and research groups that study pathological social
withdrawal. The Python API, the command line (``hikisig``) and the clinic web app
call the same core.

Examples
--------
>>> import hikisig
>>> ds = hikisig.read_table("cohort.csv")                                     # doctest: +SKIP
>>> table = hikisig.case_control(ds, group="group", case="case", control="control",
...                              by="sex", covariates=["age"])                 # doctest: +SKIP
>>> res = hikisig.discriminate(ds, group="group", case="case", control="control")  # doctest: +SKIP
>>> hikisig.predict(res, new_samples)                                          # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hikisig.errors import HikisigError, InputError, Problem, TooFewSamplesError
from hikisig.versions import __version__

if TYPE_CHECKING:
    from hikisig.analysis.modelling import discriminate, load_model, predict, severity, stratify
    from hikisig.analysis.statistics import case_control
    from hikisig.cohort.dataset import Dataset
    from hikisig.cohort.tables import read_table
    from hikisig.config import StudyConfig
    from hikisig.models.result import DiscriminationResult, SeverityResult, StratificationResult
    from hikisig.pipeline.run import run
    from hikisig.results import RunResults

#: Public name -> module that defines it (imported on first use, so ``import hikisig`` and
#: the command line start fast).
_LAZY = {
    "Dataset": "hikisig.cohort.dataset",
    "read_table": "hikisig.cohort.tables",
    "case_control": "hikisig.analysis.statistics",
    "discriminate": "hikisig.analysis.modelling",
    "severity": "hikisig.analysis.modelling",
    "stratify": "hikisig.analysis.modelling",
    "predict": "hikisig.analysis.modelling",
    "load_model": "hikisig.analysis.modelling",
    "DiscriminationResult": "hikisig.models.result",
    "SeverityResult": "hikisig.models.result",
    "StratificationResult": "hikisig.models.result",
    "StudyConfig": "hikisig.config",
    "run": "hikisig.pipeline.run",
    "RunResults": "hikisig.results",
}

__all__ = [
    "Dataset",
    "DiscriminationResult",
    "HikisigError",
    "InputError",
    "Problem",
    "RunResults",
    "SeverityResult",
    "StratificationResult",
    "StudyConfig",
    "TooFewSamplesError",
    "__version__",
    "case_control",
    "discriminate",
    "load_model",
    "predict",
    "read_table",
    "run",
    "severity",
    "stratify",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hikisig' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
