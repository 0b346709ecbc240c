"""One executor for the runs of a grid: local worker processes by default, Dask distributed on request.

Used by the layer-utilization, model-information, ESD, fine-tuning and head-to-head chapters. ``run_grid(fn,
tasks)`` calls ``fn(**task)`` for every task and returns the results in task order. With a scheduler address
(argument or ``STUDYLIB_SCHEDULER``) the tasks go to that Dask cluster instead; since each task normally wraps
:func:`studylib.platform.cache.cached_run`, a cluster whose workers share ``STUDYLIB_HOME`` fills the same cache
(one computation per run, whichever workers ask for it).

A grid fails fast: the first task that raises stops it at once, queued tasks are cancelled and the error names
the task's parameters (:class:`TaskFailed`). An interrupt (Ctrl-C, JupyterLab's "interrupt kernel") terminates
the local workers, or cancels the Dask futures, before it propagates. A grid reports its progress (runs done,
from cache, time left) and one summary line when it is done (:mod:`studylib.platform.progress`).
"""
from __future__ import annotations

import itertools
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any, Callable

from .progress import IN_WORKER, Tracker, report


class TaskFailed(RuntimeError):
    """A task of a grid raised: the message names the task's parameters; the task's error is the cause."""


def _init_worker(threads: int) -> None:
    import torch
    os.environ[IN_WORKER] = "1"  # a worker's own loops are silent: the grid reports for it
    torch.set_num_threads(threads)


def _failed(desc: str, task: dict, err: BaseException) -> TaskFailed:
    shown = ", ".join(f"{k}={v!r}" for k, v in task.items())
    return TaskFailed(f"{desc}: the task ({shown}) failed: {err.__class__.__name__}: {err}")


def _from_cache(result) -> bool:
    return isinstance(result, dict) and bool(result.get("from_cache"))


def run_grid(fn: Callable[..., Any], tasks: list[dict], workers: int | None = None,
             scheduler: str | None = None, desc: str = "grid") -> list[Any]:
    """Run ``fn(**task)`` for each task; ``fn`` must be a module-level (picklable) function.

    ``workers``: local processes (default 1: run in this process, no start-up cost; so is a single task).
    ``scheduler``: a Dask scheduler address (``tcp://host:8786``) or a ``distributed.Client``.
    Raises :class:`TaskFailed` (naming the task) at the first failing task, the others cancelled.
    """
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive int or None, got {workers!r}")
    scheduler = scheduler or os.environ.get("STUDYLIB_SCHEDULER") or None
    start = time.monotonic()
    tracker = Tracker(desc, len(tasks))
    if scheduler is not None:
        results = _run_dask(fn, tasks, scheduler, desc, tracker)
    elif (workers or 1) == 1 or len(tasks) == 1:
        results = []
        for task in tasks:
            try:
                results.append(fn(**task))
            except Exception as err:
                raise _failed(desc, task, err) from err
            tracker.step(_from_cache(results[-1]))
    else:
        results = _run_local(fn, tasks, workers, desc, tracker)
    report(summary(desc, results, time.monotonic() - start))
    return results


def summary(desc: str, results: list, seconds: float) -> str:
    """One line about a finished grid: ``"<desc>: 128 runs, 7.0 min, 3 from cache"``."""
    cached = [r["from_cache"] for r in results if isinstance(r, dict) and "from_cache" in r]
    took = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
    line = f"{desc}: {len(results)} run{'s' * (len(results) != 1)}, {took}"
    return line + (f", {sum(cached)} from cache" if cached else "")


def _run_local(fn, tasks, workers, desc, tracker):
    threads = max(1, (os.cpu_count() or 1) // workers)
    results: list[Any] = [None] * len(tasks)
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                               initargs=(threads,))
    # At most one task per worker is submitted: a pool feeds its workers from a queue that cancel_futures cannot
    # empty, so a worker whose task just failed would start the next queued one before the grid stops.
    queue = iter(enumerate(tasks))
    try:
        pending = {pool.submit(fn, **task): i for i, task in itertools.islice(queue, workers)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                i = pending.pop(fut)
                if fut.exception() is not None:
                    raise _failed(desc, tasks[i], fut.exception()) from fut.exception()
                results[i] = fut.result()
                tracker.step(_from_cache(results[i]))
            for i, task in itertools.islice(queue, len(done)):
                pending[pool.submit(fn, **task)] = i
    except BaseException:  # a failed task or an interrupt: nothing more runs
        _terminate(pool)
        raise
    pool.shutdown()
    return results


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Cancel a pool's queued tasks and end its workers now (running tasks are lost; finished runs stay cached)."""
    processes = list((pool._processes or {}).values())  # no public way to stop running tasks
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()


def _run_dask(fn, tasks, scheduler, desc, tracker):
    from distributed import Client, as_completed as dask_completed
    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    futures = []
    try:
        futures = [client.submit(fn, pure=False, **task) for task in tasks]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(tasks)
        for fut in dask_completed(futures):
            i = index[fut.key]
            if fut.status == "error":
                raise _failed(desc, tasks[i], fut.exception()) from fut.exception()
            results[i] = fut.result()
            tracker.step(_from_cache(results[i]))
        return results
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        if client is not scheduler:
            client.close()
