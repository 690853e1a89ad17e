"""Where a sweep's groups run: one after another in this process, in a pool of processes, or
as tasks on a dask.distributed cluster.

Every engine runs :func:`run_group` once per group; the group writes its own file (the
result is the file, not an object sent back), so a cluster's workers need the sweep's folder
on a file system they share. An exception in one group is reported and the other groups go
on; Ctrl-C stops the sweep (a running group closes its file and keeps a checkpoint).

A dask cluster is any scheduler a :class:`dask.distributed.Client` can reach, e.g.::

    from dask.distributed import Client, LocalCluster
    client = Client(LocalCluster(n_workers=2, threads_per_worker=1))
    gk.sweep.run("train", grid, out="sweep", scheduler=client)

On SLURM, dask-jobqueue's ``SLURMCluster`` starts the workers as batch jobs; with several
GPUs, start one worker per GPU (``CUDA_VISIBLE_DEVICES`` set for each, ``GK_BACKEND=cupy``)
and one thread per worker, so that each group owns a device.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from gk.config import check_number

# A group to run: the sweep's target, the call's arguments and the file it writes.
Task = tuple[str, dict[str, Any], str]
# A group's file and the error that stopped it.
Failure = tuple[str, BaseException]

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


def run_group(target_name: str, arguments: dict[str, Any], path: str) -> str:
    """Run one group of a sweep into ``path`` (resuming it if it was interrupted)."""
    from gk.sweep import target

    target(target_name).execute(arguments, path)
    return path


Execute = Callable[[list[Task], int, bool], list[Failure]]


@contextlib.contextmanager
def engine(workers: int = 1, scheduler: Any = None, timeout: float = 10.0
           ) -> Iterator[Execute]:
    """A function that runs tasks on the engine asked for and returns the failures.

    The engine is ready (a scheduler reached) before the ``with`` body runs, so nothing is
    written if it cannot be had.

    Raises
    ------
    ValueError
        For ``workers`` > 1 together with a ``scheduler``.
    ConnectionError
        If no scheduler answers at ``scheduler`` within ``timeout`` seconds.
    ImportError
        For a scheduler without dask.distributed installed.
    """
    def runner(finished: Callable[[list[Task]], Iterator]) -> Execute:
        return lambda tasks, total, progress: _collect(finished(tasks), total, len(tasks),
                                                       progress)

    if scheduler is None:
        yield runner(_sequential if workers == 1 else lambda tasks: _pool(tasks, workers))
        return
    if workers != 1:
        raise ValueError(f"workers={workers} and scheduler={scheduler!r} exclude each other: "
                         "a dask cluster has its own workers")
    client, owned = connect(scheduler, timeout)
    try:
        yield runner(lambda tasks: _dask(tasks, client))
    finally:
        if owned:
            client.close()


def _collect(finished: Iterator[tuple[str, BaseException | None]], total: int, todo: int,
             progress: bool) -> list[Failure]:
    """Drain an engine's results with a progress bar over all groups (finished ones
    included); return the failures."""
    failures = []
    with tqdm(total=total, initial=total - todo, unit="group", disable=not progress,
              desc="sweep") as bar:
        for path, error in finished:
            if error is not None:
                failures.append((path, error))
            bar.update()
            bar.set_postfix(failed=len(failures), last=Path(path).name)
    return failures


def _sequential(tasks: list[Task]) -> Iterator[tuple[str, BaseException | None]]:
    for task in tasks:
        try:
            run_group(*task)
        except Exception as error:      # one group's failure; Ctrl-C still stops the sweep
            yield task[2], error
        else:
            yield task[2], None


def _pool(tasks: list[Task], workers: int) -> Iterator[tuple[str, BaseException | None]]:
    """A pool of fresh ("spawn") processes, each with an equal share of the cores for its
    matrix products unless the thread variables are set already."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        with _threads_per_worker(workers):      # processes start at the submits, with these
            futures = {pool.submit(run_group, *task): task[2] for task in tasks}
        for future in as_completed(futures):
            yield futures[future], future.exception()


@contextlib.contextmanager
def _threads_per_worker(workers: int) -> Iterator[None]:
    if any(name in os.environ for name in THREAD_VARIABLES):
        yield
        return
    share = str(max(1, (os.cpu_count() or 1) // workers))
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, share))
    try:
        yield
    finally:
        for name in THREAD_VARIABLES:
            os.environ.pop(name, None)


def connect(scheduler: Any, timeout: float = 10.0) -> tuple[Any, bool]:
    """A dask.distributed Client for ``scheduler`` (an address or a Client), and whether this
    call opened it (and so must close it)."""
    check_number("timeout", timeout)
    try:
        from distributed import Client
    except ImportError:
        raise ImportError("scheduler= needs dask.distributed; install it with "
                          "pip install 'gk[dask]' (pip install -e '.[dask]' from a clone)"
                          ) from None
    if isinstance(scheduler, Client):
        return scheduler, False
    if not isinstance(scheduler, str):
        raise TypeError(f"scheduler={scheduler!r} is not allowed; scheduler must be an address "
                        "such as 'tcp://10.0.0.1:8786' or a dask.distributed.Client")
    try:
        return Client(scheduler, timeout=timeout), True
    except (OSError, TimeoutError, ValueError) as error:
        raise ConnectionError(f"scheduler={scheduler!r}: no dask scheduler answered within "
                              f"{timeout:g} s ({error}); start one (dask scheduler) or check "
                              "the address") from None


def _dask(tasks: list[Task], client: Any) -> Iterator[tuple[str, BaseException | None]]:
    """Each group one task (not pure: it writes a file); results come back as finished."""
    from distributed import as_completed as dask_completed

    futures = {client.submit(run_group, *task, key=f"gk-{Path(task[2]).stem}-"
                             f"{os.urandom(4).hex()}", pure=False): task[2] for task in tasks}
    for future in dask_completed(futures):
        yield futures[future], future.exception()
