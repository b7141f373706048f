"""Saving and loading models: skops files (never pickle) with a model card.

A model folder holds ``model.skops`` (the fitted Pipeline), ``model_card.json``
and ``model_card.md`` (what it was trained on, how it was validated, with which
software), ``metrics.json``, ``features.json`` (input columns with their unit and
training range), ``training_ids.json`` and one CSV per result table.

The model card, ``metrics.json`` and the params name no participant or sample: the
training set is recorded as its size, a fingerprint of the data (``sha256``) and the
sha256 of the sorted sample ids (``ids_sha256``). ``training_ids.json`` holds a random
key of the model's own and the HMAC-SHA256 of every training id (and of every training
participant, when known) with it (sorted), so that :func:`hikisig.models.predict.predict`
can flag samples, and participants, the model was trained on without the folder listing
anyone's code.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from hikisig.errors import HikisigError
from hikisig.models.result import (
    FeatureRange,
    ModelResult,
    TrainingData,
    clean,
    frame_sha256,
    result_class,
    training_data,
)
from hikisig.versions import package_versions

__all__ = ["ID_HASH_FILE", "frame_sha256", "load_model", "save_model"]

#: The file of a model folder with the keyed hashes of the training sample ids.
ID_HASH_FILE = "training_ids.json"

#: Module prefixes whose types a model file may contain.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "hikisig.", "builtins.", "collections.")


def _card_markdown(card: dict[str, Any]) -> str:
    m = card["metrics"]
    lines = [f"# Model card: {card['kind']} ({card['study']})", "",
             "**Research use only. Not a medical device; not for diagnosis.**", "",
             f"- Created: {card['created']}", f"- hikisig {card['versions']['hikisig']}",
             f"- Training data: {card['training']['n']} samples, sha256 "
             f"`{card['training']['sha256'][:16]}...`"
             + (f", ids sha256 `{card['training']['ids_sha256'][:16]}...`"
                if card["training"].get("ids_sha256") else ""),
             f"- Features: {len(card['features'])} ({', '.join(card['features'][:12])}"
             f"{', ...' if len(card['features']) > 12 else ''})",
             f"- Preprocessing and estimator: `{card['pipeline']}`",
             f"- Validation: {m.get('cv_scheme') or 'see metrics'}",
             f"- Seed: {card['params'].get('seed')}"]
    if m.get("verdict"):
        lines += [f"- Verdict: {m['verdict']}"]
    lines += ["", "## Metrics", ""]
    lines += [f"- {k}: {v}" for k, v in m.items() if not isinstance(v, list | dict)]
    if card.get("synthetic"):
        lines += ["", "Trained on SYNTHETIC data."]
    lines += ["", "## Software", ""] + [f"- {k} {v}" for k, v in card["versions"].items()]
    return "\n".join(lines) + "\n"


def save_model(result: ModelResult, out: str | Path, *, X: pd.DataFrame | None = None, y: Any = None,
               units: dict[str, str | None] | None = None, study: str | None = None,
               synthetic: bool | None = None) -> Path:
    """Write a model folder (atomically: a temporary folder renamed at the end).

    Parameters
    ----------
    result : ModelResult
    out : path
        The folder to create (replaced if it exists and holds a hikisig model).
    X, y : training data, optional
        Replace the result's training summary (fingerprint, feature ranges, and the
        training ids: ``X.index``).
    units : dict, optional
        Unit of each feature (None where unknown); default: the training summary's.
    study, synthetic : optional
        Override the result's study name and synthetic flag.
    """
    import skops.io as sio

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "model_card.json").exists():
        raise HikisigError(f"{out} exists and is not a hikisig model folder: choose another --out")
    training = training_data(X[result.features], y) if X is not None else result.training
    if training is None:
        raise HikisigError("the model has no training summary: give the training data (X=...)")
    if units is not None:
        training = replace(training, features=[replace(f, unit=units.get(f.name))
                                               for f in training.features])
    study = result.study if study is None else study
    synthetic = result.synthetic if synthetic is None else synthetic
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        sio.dump(result.model, tmp / "model.skops")
        features = [asdict(f) for f in training.features]
        (tmp / "features.json").write_text(json.dumps(features, indent=1) + "\n")
        if training.id_key is not None:
            ids = {"scheme": "HMAC-SHA256 of each training sample id (UTF-8 text) with key",
                   "key": training.id_key, "n": len(training.id_hashes),
                   "hashes": sorted(training.id_hashes),
                   "participant_hashes": sorted(training.participant_hashes)}
            (tmp / ID_HASH_FILE).write_text(json.dumps(ids, indent=0) + "\n")
        metrics = result.to_metrics()
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        for name, table in result.tables.items():
            table.to_csv(tmp / f"{name}.csv", index=False, lineterminator="\n")
        card = {
            "kind": result.kind, "study": study, "synthetic": synthetic,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "intended_use": "Research use only. Not a medical device; not for diagnosis.",
            "training": {"n": training.n, "sha256": training.sha256,
                         "ids_sha256": training.ids_sha256},
            "features": result.features, "units": training.units,
            "tables": sorted(result.tables),
            "pipeline": repr(result.model).replace("\n", " "),
            "params": clean(result.params), "metrics": metrics,
            "versions": package_versions(),
        }
        (tmp / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
        (tmp / "model_card.md").write_text(_card_markdown(card))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
        result.folder = out
        return out
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def load_model(folder: str | Path) -> ModelResult:
    """Load a model folder as the result class of its kind (:class:`DiscriminationResult`,
    ...), refusing types outside sklearn/numpy/scipy/hikisig in the model file.

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
    try:
        card = json.loads((folder / "model_card.json").read_text())
        features = json.loads((folder / "features.json").read_text())
        metrics = json.loads((folder / "metrics.json").read_text())
        cls = result_class(str(card["kind"]))
    except (OSError, ValueError, KeyError) as exc:
        raise HikisigError(f"{folder}: not a readable hikisig model folder ({exc})") from exc
    model = sio.load(path, trusted=untrusted)
    names = card.get("tables") or sorted(p.stem for p in folder.glob("*.csv"))
    tables = {n: pd.read_csv(folder / f"{n}.csv") for n in names if (folder / f"{n}.csv").exists()}
    training = TrainingData(int(card["training"]["n"]), str(card["training"]["sha256"]),
                            [FeatureRange(**f) for f in features],
                            card["training"].get("ids_sha256"))
    if (folder / ID_HASH_FILE).exists():
        try:
            ids = json.loads((folder / ID_HASH_FILE).read_text())
            training.id_key = str(ids["key"])
            training.id_hashes = [str(h) for h in ids["hashes"]]
            training.participant_hashes = [str(h) for h in ids.get("participant_hashes", [])]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise HikisigError(f"{folder / ID_HASH_FILE}: not readable ({exc})") from exc
    return cls.from_metrics(metrics, model=model, features=[f["name"] for f in features],
                            tables=tables, params=card.get("params") or {}, training=training,
                            study=str(card.get("study") or ""),
                            synthetic=bool(card.get("synthetic")), folder=folder)
