"""Saving and loading models: skops files (never pickle) with a model card.

A model folder holds ``model.skops`` (the fitted Pipeline), ``model_card.json``
and ``model_card.md`` (what it was trained on, how it was validated, with which
software), ``metrics.json``, ``features.json`` (input columns with their unit and
training range) and one CSV per result table.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hikisig.errors import HikisigError
from hikisig.models.result import ModelResult
from hikisig.versions import package_versions

__all__ = ["LoadedModel", "frame_sha256", "load_model", "save_model"]

#: Module prefixes whose types a model file may contain.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "hikisig.", "builtins.", "collections.")


def frame_sha256(X: pd.DataFrame, y: Any = None) -> str:
    """A fingerprint of the training data (values, columns, index and target)."""
    h = hashlib.sha256()
    h.update(",".join(map(str, X.columns)).encode())
    h.update(",".join(map(str, X.index)).encode())
    h.update(np.ascontiguousarray(X.to_numpy(dtype=np.float64)).tobytes())
    if y is not None:
        h.update(np.asarray(pd.Series(y).astype(str)).astype("U").tobytes())
    return h.hexdigest()


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, int | float | str | bool) or v is None:
        return v
    return str(v)


def _card_markdown(card: dict[str, Any]) -> str:
    m = card["metrics"]
    lines = [f"# Model card: {card['kind']} ({card['study']})", "",
             "**Research use only. Not a medical device; not for diagnosis.**", "",
             f"- Created: {card['created']}", f"- hikisig {card['versions']['hikisig']}",
             f"- Training data: {card['training']['n']} samples, sha256 "
             f"`{card['training']['sha256'][:16]}...`",
             f"- Features: {len(card['features'])} ({', '.join(card['features'][:12])}"
             f"{', ...' if len(card['features']) > 12 else ''})",
             f"- Preprocessing and estimator: `{card['pipeline']}`",
             f"- Validation: {m.get('cv_scheme', 'see metrics')}", f"- Seed: {card['params'].get('seed')}",
             "", "## Metrics", ""]
    lines += [f"- {k}: {v}" for k, v in m.items() if not isinstance(v, list | dict)]
    if card.get("synthetic"):
        lines += ["", "Trained on SYNTHETIC data."]
    lines += ["", "## Software", ""] + [f"- {k} {v}" for k, v in card["versions"].items()]
    return "\n".join(lines) + "\n"


def save_model(result: ModelResult, out: str | Path, *, X: pd.DataFrame, y: Any = None,
               units: dict[str, str | None] | None = None, study: str = "",
               synthetic: bool = False) -> Path:
    """Write a model folder (atomically: a temporary folder renamed at the end).

    Parameters
    ----------
    result : ModelResult
    out : path
        The folder to create (replaced if it exists and holds a hikisig model).
    X, y : training data
        For the fingerprint, the feature ranges and the card.
    units : dict, optional
        Unit of each feature (None where unknown).
    """
    import skops.io as sio

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "model_card.json").exists():
        raise HikisigError(f"{out} exists and is not a hikisig model folder: choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        sio.dump(result.model, tmp / "model.skops")
        xf = X[result.features].astype(float)
        features = [{"name": f, "unit": (units or {}).get(f), "min": _jsonable(float(np.nanmin(xf[f]))),
                     "max": _jsonable(float(np.nanmax(xf[f])))} for f in result.features]
        (tmp / "features.json").write_text(json.dumps(features, indent=1) + "\n")
        (tmp / "metrics.json").write_text(json.dumps(_jsonable(result.metrics), indent=2) + "\n")
        for name, table in result.tables.items():
            table.to_csv(tmp / f"{name}.csv", index=False, lineterminator="\n")
        card = {
            "kind": result.kind, "study": study, "synthetic": synthetic,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "intended_use": "Research use only. Not a medical device; not for diagnosis.",
            "training": {"n": len(X), "sha256": frame_sha256(X, y)},
            "features": result.features, "units": units or {},
            "pipeline": repr(result.model).replace("\n", " "),
            "params": _jsonable(result.params), "metrics": _jsonable(result.metrics),
            "versions": package_versions(),
        }
        (tmp / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
        (tmp / "model_card.md").write_text(_card_markdown(card))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
        return out
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


class LoadedModel:
    """A model folder read back: the estimator, its card and its features."""

    def __init__(self, folder: Path, model: Any, card: dict[str, Any],
                 features: list[dict[str, Any]], metrics: dict[str, Any]) -> None:
        self.folder, self.model, self.card = folder, model, card
        self.features, self.metrics = features, metrics

    @property
    def kind(self) -> str:
        """discriminate, severity or stratify."""
        return str(self.card["kind"])

    @property
    def feature_names(self) -> list[str]:
        """Input columns, in order."""
        return [f["name"] for f in self.features]


def load_model(folder: str | Path) -> LoadedModel:
    """Load a model folder, refusing types outside sklearn/numpy/scipy/hikisig.

    Raises
    ------
    HikisigError
        Missing files, or a model file that contains untrusted types.
    """
    import skops.io as sio

    folder = Path(folder)
    path = folder / "model.skops"
    if not path.exists():
        raise HikisigError(f"{folder}: no model.skops here (expected a folder written by "
                           "`hikisig model ...`)")
    untrusted = sio.get_untrusted_types(file=path)
    bad = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if bad:
        raise HikisigError(f"{path} contains types hikisig does not trust: {', '.join(bad)}")
    model = sio.load(path, trusted=untrusted)
    card = json.loads((folder / "model_card.json").read_text())
    features = json.loads((folder / "features.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    return LoadedModel(folder, model, card, features, metrics)
