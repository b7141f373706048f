"""The Dask backend: same results as serial for statistics (in memory and out of core) and a
discrimination run; a local cluster of N workers; clear errors for a scheduler that is not there."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hikisig import engine as engine_mod
from hikisig.cli import app
from hikisig.engine import Engine
from hikisig.errors import HikisigError
from hikisig.stats import case_control
from hikisig.stats.outofcore import case_control_parquet


@pytest.fixture
def client() -> Iterator[object]:
    from distributed import Client, LocalCluster

    with LocalCluster(processes=False, n_workers=2, threads_per_worker=1,
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as c:
        yield c


def _data(n: int = 150, p: int = 12, seed: int = 2) -> tuple[pd.DataFrame, np.ndarray, np.ndarray,
                                                                pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.lognormal(size=(n, p)), columns=[f"a{j}" for j in range(p)])
    X.iloc[rng.random(X.shape) < 0.05] = np.nan
    case = rng.random(n) < 0.5
    X.loc[case, "a0"] *= 2.0
    sex = np.where(rng.random(n) < 0.6, "M", "F")
    age = pd.DataFrame({"age": rng.integers(18, 65, n).astype(float)})
    return X, case, sex, age, rng.normal(size=n)


def test_case_control_on_dask_equals_serial(client: object) -> None:
    X, case, sex, age, sev = _data()
    kw = {"by": sex, "covariates": age, "severity": sev, "block_cells": 400}
    serial = case_control(X, case, **kw)
    dask = case_control(X, case, engine=Engine("dask"), **kw)
    pd.testing.assert_frame_equal(dask, serial)
    assert len(serial) == 12 * (3 * 3 + 3 + 2)  # 3 strata x 3 tests, lm, correlations


def test_parquet_on_dask_equals_serial(client: object, tmp_path: Path) -> None:
    X, case, sex, age, sev = _data()
    X.to_parquet(tmp_path / "x.parquet", row_group_size=40)
    kw = {"by": sex, "covariates": age, "severity": sev, "block_cells": 300}
    serial = case_control_parquet(tmp_path / "x.parquet", list(X.columns), case, **kw)
    with Engine("dask") as eng:
        dask = case_control_parquet(tmp_path / "x.parquet", list(X.columns), case, engine=eng, **kw)
    pd.testing.assert_frame_equal(dask, serial)
    assert client.status == "running"  # type: ignore[attr-defined]  # a caller's client stays open


def test_cli_stats_and_discriminate_on_dask_equal_serial(client: object, tmp_path: Path) -> None:
    X, case, sex, age, _ = _data(n=60, p=8)
    wide = pd.concat([pd.DataFrame({"id": [f"S{i}" for i in range(60)], "sex": sex,
                                    "group": np.where(case, "case", "control")}), age, X], axis=1)
    wide.to_csv(tmp_path / "w.csv", index=False)
    wide.to_parquet(tmp_path / "w.parquet", index=False)
    runner = CliRunner()
    for src in ("w.csv", "w.parquet"):
        outs = []
        for extra in ([], ["--engine", "dask"]):
            out = tmp_path / f"{src}{len(extra)}.csv"
            r = runner.invoke(app, ["stats", str(tmp_path / src), "--out", str(out), *extra])
            assert r.exit_code == 0, r.output
            outs.append(out.read_text())
        assert outs[0] == outs[1]
    wide.drop(columns=["sex", "age"]).to_csv(tmp_path / "m.csv", index=False)
    metrics = []
    for extra in ([], ["--engine", "dask"]):
        out = tmp_path / f"model{len(extra)}"
        r = runner.invoke(app, ["model", "discriminate", str(tmp_path / "m.csv"), "--model",
                                "logistic", "--cv-repeats", "2", "--permutations", "100",
                                "--out", str(out), *extra])
        assert r.exit_code == 0, r.output
        metrics.append((out / "metrics.json").read_text())
        oof = (out / "oof_predictions.csv").read_text()
        metrics.append(oof)
    assert metrics[0] == metrics[2] and metrics[1] == metrics[3]


def test_engine_starts_a_local_cluster_of_n_workers_and_closes_it() -> None:
    import socket
    import warnings

    from distributed import get_client

    with pytest.raises(ValueError):
        get_client()  # no client around: the engine must start its own
    # another cluster's dashboard port is taken: the engine's cluster neither warns nor fails
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        blocker.bind(("127.0.0.1", 8787))
        blocker.listen()
    except OSError:
        pass  # already held by someone else: the same situation
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        eng = Engine("dask", n_jobs=1)
        eng.client()
    blocker.close()
    with eng:
        client = eng.client()
        assert len(client.scheduler_info()["workers"]) == 1
        assert eng.map(abs, [-3, 4, -5]) == [3, 4, 5]
        assert eng.map(divmod, [7, 9], common=4) == [(1, 3), (2, 1)]
        assert pickle.loads(pickle.dumps(eng)).backend == "dask"  # picklable, without its client
    assert client.status == "closed"


def test_unreachable_scheduler_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_mod, "CONNECT_TIMEOUT", 1)
    with pytest.raises(HikisigError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"):
        Engine("dask", scheduler="tcp://127.0.0.1:9").map(abs, [1])
    with pytest.raises(ValueError, match="n_jobs must be at least 1"):
        Engine("dask", n_jobs=0)


def test_engine_on_a_scheduler_address_and_dropped_without_close(client: object) -> None:
    import gc

    address = client.scheduler.address  # type: ignore[attr-defined]
    eng = Engine("dask", scheduler=address)
    own = eng.client()
    assert own is not client and eng.map(abs, [-2], common=None) == [2]
    del eng
    gc.collect()
    assert own.status == "closed"
    assert client.status == "running"  # type: ignore[attr-defined]
