"""One executor for every resampling loop: serial, loky (joblib) or Dask.

CV repeats, bootstraps and permutations are written as ``engine.map(fn,
tasks)``. Each task carries its own seed, drawn from
``numpy.random.SeedSequence(root).spawn(n)``, so results are identical whatever
the backend or the number of workers. Analysis code never imports Dask
itself: it names a backend.

Examples
--------
>>> seeds = spawn_seeds(7, 3)
>>> run_map(lambda s: s % 10, seeds) == run_map(lambda s: s % 10, seeds, backend="loky", n_jobs=2)
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import numpy as np

__all__ = ["BACKENDS", "Engine", "run_map", "spawn_seeds"]

#: Backends of :func:`run_map`.
BACKENDS = ("serial", "loky", "dask")

T = TypeVar("T")
R = TypeVar("R")


def spawn_seeds(seed: int | np.random.SeedSequence, n: int) -> list[int]:
    """``n`` independent integer seeds from ``SeedSequence(seed).spawn(n)``.

    Examples
    --------
    >>> spawn_seeds(1, 2) == spawn_seeds(1, 2)
    True
    """
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return [int(child.generate_state(1, dtype=np.uint32)[0]) for child in root.spawn(n)]


def run_map(fn: Callable[[T], R], tasks: Iterable[T], *, backend: str = "serial",
            n_jobs: int | None = None, scheduler: str | None = None) -> list[R]:
    """Apply ``fn`` to every task and return the results in task order.

    Parameters
    ----------
    fn : callable
        A picklable function of one task (for loky and Dask).
    tasks : iterable
        The tasks (each carrying its own seed when randomness is involved).
    backend : {"serial", "loky", "dask"}
        ``serial`` runs in this process; ``loky`` in joblib worker processes;
        ``dask`` on a Dask cluster: the scheduler at ``scheduler``
        (``tcp://host:port``), else the current ``distributed`` client, else a
        new ``LocalCluster``.
    n_jobs : int, optional
        Workers for loky (default: all CPUs).
    scheduler : str, optional
        Address of an existing Dask scheduler.
    """
    items = list(tasks)
    if backend == "serial":
        return [fn(t) for t in items]
    if backend == "loky":
        from joblib import Parallel, delayed

        return list(Parallel(n_jobs=n_jobs or -1, backend="loky")(delayed(fn)(t) for t in items))
    if backend == "dask":
        from distributed import Client, get_client

        if scheduler:
            with Client(scheduler) as client:
                return list(client.gather(client.map(fn, items, pure=False)))
        try:
            client = get_client()
        except ValueError:
            with Client(processes=False, dashboard_address=None) as own:
                return list(own.gather(own.map(fn, items, pure=False)))
        return list(client.gather(client.map(fn, items, pure=False)))
    raise ValueError(f"unknown backend {backend!r} (expected {', '.join(BACKENDS)})")


class Engine:
    """A backend choice carried through an analysis.

    Examples
    --------
    >>> Engine("serial").map(abs, [-1, 2])
    [1, 2]
    """

    def __init__(self, backend: str = "serial", n_jobs: int | None = None,
                 scheduler: str | None = None) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r} (expected {', '.join(BACKENDS)})")
        self.backend, self.n_jobs, self.scheduler = backend, n_jobs, scheduler

    def map(self, fn: Callable[[T], R], tasks: Iterable[T]) -> list[R]:
        """See :func:`run_map`."""
        return run_map(fn, tasks, backend=self.backend, n_jobs=self.n_jobs,
                       scheduler=self.scheduler)

    def __repr__(self) -> str:
        return f"Engine({self.backend!r})"


