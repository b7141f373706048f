"""Model folders: skops round trip, model cards, trusted types, prediction and follow-up."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from hikisig.errors import HikisigError
from hikisig.models.persist import load_model, save_model
from hikisig.models.predict import IN_TRAINING_WARNING, follow_up, predict
from hikisig.models.result import DiscriminationResult, result_class
from hikisig.models.signature import consensus_signature
from hikisig.prep import LogTransformer, Scaler


@pytest.fixture
def fitted(tmp_path):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.lognormal(size=(40, 3)), columns=["ornithine", "arginine", "c16"],
                     index=[f"S{i}" for i in range(40)])
    y = np.arange(40) % 2 == 0
    X.loc[y, "c16"] *= 2
    pipe = make_pipeline(LogTransformer(), Scaler(), LogisticRegression()).fit(X, y)
    sig = pd.DataFrame({"analyte": ["c16", "ornithine", "arginine"], "rank": [1, 2, 3],
                        "direction": ["higher in cases"] * 3, "effect": [1.0, 0.1, 0.0],
                        "importance": [0.3, 0.01, 0.0], "stability": [1.0, 0.2, 0.1]})
    thr = pd.DataFrame({"rule": ["youden"], "threshold": [0.5]})
    res = DiscriminationResult(model=pipe, features=list(X.columns),
                               tables={"signature": sig, "thresholds": thr}, params={"seed": 1},
                               auc=0.9, cv_scheme="test")
    folder = save_model(res, tmp_path / "m", X=X, y=y, units={"ornithine": "umol/L"},
                        study="demo-synthetic", synthetic=True)
    return folder, X, pipe


def test_round_trip_and_card(fitted):
    folder, X, pipe = fitted
    m = load_model(folder)
    np.testing.assert_array_equal(m.model.predict_proba(X), pipe.predict_proba(X))
    card = json.loads((folder / "model_card.json").read_text())
    assert card["kind"] == "discriminate" and card["training"]["n"] == 40
    assert len(card["training"]["sha256"]) == 64 and card["versions"]["scikit-learn"]
    assert "Research use only" in (folder / "model_card.md").read_text()
    assert (folder / "signature.csv").exists() and (folder / "metrics.json").exists()
    assert isinstance(m, DiscriminationResult) and m.auc == 0.9 and m.cv_scheme == "test"
    assert m.synthetic and m.study == "demo-synthetic" and m.training.units["ornithine"] == "umol/L"
    assert m.threshold("youden") == 0.5 and m.signature["analyte"].tolist()[0] == "c16"


def test_untrusted_types_refused(fitted, tmp_path, monkeypatch):
    import skops.io as sio

    folder, _, _ = fitted
    monkeypatch.setattr(sio, "get_untrusted_types", lambda file: ["evil.module.Thing"])
    with pytest.raises(HikisigError, match="does not trust"):
        load_model(folder)


def test_predict_missing_units_and_range(fitted):
    folder, X, _ = fitted
    m = load_model(folder)
    out = predict(m, X)
    assert out["probability"].between(0, 1).all() and out["predicted_case"].dtype == bool
    with pytest.raises(HikisigError, match="lacks 1 analyte"):
        predict(m, X.drop(columns=["c16"]))
    with pytest.raises(HikisigError, match="units differ"):
        predict(m, X, units={"ornithine": "mg/dL"})
    far = X.copy()
    far.iloc[0, 0] = far.iloc[:, 0].max() * 1000
    flagged = predict(m, far)
    assert flagged["out_of_range"].iloc[0] == "ornithine"
    assert flagged["warning"].iloc[0] == (IN_TRAINING_WARNING + "; values outside the training "
                                          "range: prediction is an extrapolation")
    assert (flagged["warning"].iloc[1:] == IN_TRAINING_WARNING).all()
    assert flagged["in_training"].all() and flagged["in_training"].dtype == bool
    assert list(flagged.index) == list(X.index)
    new = far.rename(index=lambda i: f"new-{i}")
    fresh = predict(m, new)
    assert not fresh["in_training"].any()
    assert fresh["warning"].iloc[0].startswith("values outside") and (fresh["warning"].iloc[1:] == "").all()


def test_follow_up_reliable_change():
    p = pd.DataFrame({"participant": ["A", "A", "A", "B", "B"], "visit": [1, 2, 3, 1, 2],
                      "s": [60.0, 58.0, 40.0, 30.0, 31.0]})
    f = follow_up(p, "s", sem=5.0)
    assert f["change_from_baseline"].tolist() == [0.0, -2.0, -20.0, 0.0, 1.0]
    assert f["reliable_change"].tolist() == [False, False, True, False, False]
    assert f["reliable_change_threshold"].iloc[0] == pytest.approx(1.959964 * np.sqrt(2) * 5, rel=1e-5)


def test_consensus_signature():
    def res(kind, order):
        sig = pd.DataFrame({"analyte": order, "rank": range(1, len(order) + 1),
                            "direction": "up", "effect": 0.0, "importance": 0.0, "stability": 0.0})
        return result_class(kind)(model=None, features=order, tables={"signature": sig})

    c = consensus_signature([res("discriminate", ["a", "b", "c"]), res("severity", ["b", "a", "c"])],
                            top=1)
    assert c["analyte"].tolist()[:2] in (["a", "b"], ["b", "a"]) and c["analyte"].iloc[-1] == "c"
    assert c.set_index("analyte").loc["c", "consensus_score"] == 0
    assert c.set_index("analyte").loc["a", "n_models_top"] == 1
    # results assembled by hand were never assessed: they enter
    assert c.attrs["models"] == ["discriminate", "severity"] and c.attrs["excluded"] == {}
    assert (c["models"] == "discriminate;severity").all()


def test_consensus_keeps_only_validated_models():
    def res(kind, order, validated):
        sig = pd.DataFrame({"analyte": order, "rank": range(1, len(order) + 1),
                            "direction": "up", "effect": 0.0, "importance": 0.0, "stability": 0.0})
        return result_class(kind)(model=None, features=order, tables={"signature": sig},
                                  validated=validated, verdict=f"{kind} verdict")

    c = consensus_signature([res("discriminate", ["a", "b", "c"], True),
                             res("severity", ["c", "b", "a"], False),
                             res("stratify", ["c", "a", "b"], None)])
    assert c.attrs["models"] == ["discriminate", "stratify"]
    assert c.attrs["excluded"] == {"severity": "severity verdict"}
    assert "rank_severity" not in c and {"rank_discriminate", "rank_stratify"} <= set(c.columns)
    assert (c["models"] == "discriminate;stratify").all()
    none = consensus_signature([res("severity", ["a"], False), res("stratify", ["a"], False)])
    assert none.empty and list(none.columns) == ["analyte", "consensus_score", "n_models_top", "models"]
    assert none.attrs["models"] == [] and set(none.attrs["excluded"]) == {"severity", "stratify"}
