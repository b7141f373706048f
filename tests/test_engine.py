"""The executor: same results whatever the backend."""

from __future__ import annotations

import numpy as np
import pytest

from hikisig.engine import Engine, run_map, spawn_seeds


def _task(seed: int) -> float:
    return float(np.random.default_rng(seed).normal(size=100).mean())


def test_seeds_are_independent_and_reproducible():
    a = spawn_seeds(42, 10)
    assert a == spawn_seeds(42, 10) and len(set(a)) == 10
    assert spawn_seeds(42, 3) == a[:3]  # spawning is positional


def test_serial_loky_dask_identical():
    from distributed import Client, LocalCluster

    seeds = spawn_seeds(7, 12)
    serial = run_map(_task, seeds)
    assert run_map(_task, seeds, backend="loky", n_jobs=2) == serial
    with LocalCluster(processes=False, n_workers=2, dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster):
        assert Engine("dask").map(_task, seeds) == serial


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown backend"):
        Engine("spark")
