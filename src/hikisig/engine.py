"""One executor for every resampling loop and block computation: serial, loky (joblib) or Dask.

CV repeats, bootstraps, permutations and blocks of analytes are written as
``engine.map(fn, tasks)``. Each task carries its own seed, drawn from
``numpy.random.SeedSequence(root).spawn(n)``, and results come back in task
order, so they are identical whatever the backend or the number of workers.
Analysis code never imports Dask itself: it names a backend.

With ``backend="dask"`` an :class:`Engine` connects to the scheduler at
``scheduler`` (``tcp://host:port``: an existing cluster), else uses the
current ``distributed`` client (one the caller created), else starts a
``LocalCluster`` of ``n_jobs`` worker processes (default: one per CPU). The
client, and a cluster it started, live until :meth:`Engine.close` (or the end
of a ``with`` block).

Examples
--------
>>> seeds = spawn_seeds(7, 3)
>>> run_map(lambda s: s % 10, seeds) == run_map(lambda s: s % 10, seeds, backend="loky", n_jobs=2)
True
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np

from hikisig.errors import HikisigError

__all__ = ["BACKENDS", "Engine", "open_engine", "run_map", "spawn_seeds"]

#: Backends of :func:`run_map`.
BACKENDS = ("serial", "loky", "dask")

T = TypeVar("T")
R = TypeVar("R")

#: Seconds to wait for a Dask scheduler before giving up.
CONNECT_TIMEOUT = 20


def spawn_seeds(seed: int | np.random.SeedSequence, n: int) -> list[int]:
    """``n`` independent integer seeds from ``SeedSequence(seed).spawn(n)``.

    Examples
    --------
    >>> spawn_seeds(1, 2) == spawn_seeds(1, 2)
    True
    """
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return [int(child.generate_state(1, dtype=np.uint32)[0]) for child in root.spawn(n)]


def _shutdown(client: Any, cluster: Any) -> None:
    """Close a client and the cluster an engine started."""
    client.close()
    if cluster is not None:
        cluster.close()


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (expected {', '.join(BACKENDS)})")


def run_map(fn: Callable[..., R], tasks: Iterable[Any], *, backend: str = "serial",
            n_jobs: int | None = None, scheduler: str | None = None, common: Any = None) -> list[R]:
    """Apply ``fn`` to every task and return the results in task order.

    Parameters
    ----------
    fn : callable
        A picklable function of one task (for loky and Dask); with ``common``, of the
        task and ``common``.
    tasks : iterable
        The tasks (each carrying its own seed when randomness is involved).
    backend : {"serial", "loky", "dask"}
        ``serial`` runs in this process; ``loky`` in joblib worker processes;
        ``dask`` on a Dask cluster: the scheduler at ``scheduler``
        (``tcp://host:port``), else the current ``distributed`` client, else a
        new ``LocalCluster`` (closed on return).
    n_jobs : int, optional
        Workers for loky, or of a new Dask ``LocalCluster`` (default: all CPUs).
    scheduler : str, optional
        Address of an existing Dask scheduler.
    common : object, optional
        Data every task needs (sent once to each Dask worker): ``fn(task, common)``.
    """
    with Engine(backend, n_jobs=n_jobs, scheduler=scheduler) as engine:
        return engine.map(fn, tasks, common=common)


class Engine:
    """A backend choice carried through an analysis.

    Parameters
    ----------
    backend : {"serial", "loky", "dask"}
    n_jobs : int, optional
        Processes for loky; workers of a ``LocalCluster`` started for Dask (default:
        the number of CPUs, one thread each).
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``).

    Examples
    --------
    >>> Engine("serial").map(abs, [-1, 2])
    [1, 2]
    >>> with Engine("serial") as e:
    ...     e.map(divmod, [7, 9], common=4)
    [(1, 3), (2, 1)]
    """

    def __init__(self, backend: str = "serial", n_jobs: int | None = None,
                 scheduler: str | None = None) -> None:
        _check_backend(backend)
        if n_jobs is not None and n_jobs < 1:
            raise ValueError(f"n_jobs must be at least 1 (got {n_jobs})")
        self.backend, self.n_jobs, self.scheduler = backend, n_jobs, scheduler
        self._client: Any = None
        self._cluster: Any = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    # -- Dask ----------------------------------------------------------------------------------

    def client(self) -> Any:
        """The ``distributed.Client`` of a Dask engine (connected or started on first use)."""
        if self.backend != "dask":
            raise ValueError(f"a {self.backend!r} engine has no Dask client")
        if self._client is not None:
            return self._client
        from distributed import Client, LocalCluster, get_client

        if self.scheduler:
            try:
                self._client = Client(self.scheduler, timeout=f"{CONNECT_TIMEOUT}s")
            except (OSError, TimeoutError) as exc:
                raise HikisigError(f"cannot reach the Dask scheduler at {self.scheduler} "
                                   f"within {CONNECT_TIMEOUT} s ({exc})") from exc
            self._finalizer = weakref.finalize(self, _shutdown, self._client, None)
            return self._client
        try:
            self._client = get_client()
            return self._client
        except ValueError:
            pass
        workers = self.n_jobs or os.cpu_count() or 1
        # the scheduler's HTTP server always starts: on a free loopback port, not 8787
        # (which another cluster may hold)
        self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                     dashboard_address="127.0.0.1:0")
        self._client = Client(self._cluster)
        # an engine dropped without close() (e.g. a backend name given to a model) still
        # shuts its cluster down
        self._finalizer = weakref.finalize(self, _shutdown, self._client, self._cluster)
        return self._client

    def _dask_map(self, fn: Callable[..., R], items: list[Any], common: Any) -> list[R]:
        client = self.client()
        if not items:
            return []
        # task data goes straight to the workers (not through the task graph); results
        # are gathered in task order, so they do not depend on which worker ran what
        data = client.scatter(items, hash=False)
        if common is None:
            futures = client.map(fn, data, pure=False)
        else:
            shared = client.scatter(common, broadcast=True, hash=False)
            futures = client.map(fn, data, [shared] * len(items), pure=False)
        try:
            return list(client.gather(futures))
        finally:
            for f in futures:
                f.release()

    # -- all backends --------------------------------------------------------------------------

    def map(self, fn: Callable[..., R], tasks: Iterable[Any], common: Any = None) -> list[R]:
        """``[fn(t) for t in tasks]`` (or ``fn(t, common)``) on the engine's backend, in order.

        See :func:`run_map`.
        """
        items = list(tasks)
        if self.backend == "serial":
            return [fn(t) if common is None else fn(t, common) for t in items]
        if self.backend == "loky":
            from joblib import Parallel, delayed

            calls = (delayed(fn)(t) if common is None else delayed(fn)(t, common) for t in items)
            return list(Parallel(n_jobs=self.n_jobs or -1, backend="loky")(calls))
        return self._dask_map(fn, items, common)

    def close(self) -> None:
        """Close the client and any cluster this engine started (not a caller's client)."""
        finalizer = self._finalizer
        self._client = self._cluster = self._finalizer = None
        if finalizer is not None:
            finalizer()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_client=None, _cluster=None, _finalizer=None)
        return state

    def __repr__(self) -> str:
        return f"Engine({self.backend!r})"


def open_engine(backend: str = "serial", scheduler: str | None = None,
                workers: int | None = None) -> Engine:
    """The engine of a command or a study config (``engine``, ``scheduler``, ``workers``),
    with the combinations checked; a scheduler given is reached now, not after the data
    are read. Use it in a ``with`` block (a local Dask cluster it starts is closed).

    Raises
    ------
    HikisigError
        An unknown backend, or settings that do not go together.
    """
    if backend not in BACKENDS:
        raise HikisigError(f"unknown --engine {backend!r} (expected {', '.join(BACKENDS)})")
    if scheduler and backend != "dask":
        raise HikisigError("--scheduler needs --engine dask (run.scheduler needs run.engine = "
                           "\"dask\")")
    if scheduler and workers is not None:
        raise HikisigError("--workers sizes a local Dask cluster: leave it out with --scheduler "
                           "(the cluster's own workers run the tasks)")
    if workers is not None and backend == "serial":
        raise HikisigError("--workers needs --engine loky or dask (run.workers needs run.engine "
                           "loky or dask)")
    engine = Engine(backend, n_jobs=workers, scheduler=scheduler)
    if scheduler:
        engine.client()
    return engine
