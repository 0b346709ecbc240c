"""One executor for the runs of a grid: local worker processes by default, Dask distributed on request.

Used by the layer-utilization, model-information, ESD and fine-tuning chapters. ``run_grid(fn, tasks)``
calls ``fn(**task)`` for every task and returns the results in task order. With a scheduler address
(argument or ``STUDYLIB_SCHEDULER``) the tasks go to that Dask cluster instead; since each task
normally wraps :func:`studylib.platform.cache.cached_run`, a cluster whose workers share ``STUDYLIB_HOME``
fills the same cache. A grid prints one summary line when it is done (runs, time, how many came from
the cache: results that are dicts with a ``from_cache`` key are counted).
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any, Callable

from .progress import progress, report


def _init_worker(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)


def run_grid(fn: Callable[..., Any], tasks: list[dict], workers: int | None = None,
             scheduler: str | None = None, desc: str = "grid") -> list[Any]:
    """Run ``fn(**task)`` for each task; ``fn`` must be a module-level (picklable) function.

    ``workers``: local processes (default 1: run in this process, no start-up cost; so is a single task).
    ``scheduler``: a Dask scheduler address (``tcp://host:8786``) or a ``distributed.Client``.
    """
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive int or None, got {workers!r}")
    scheduler = scheduler or os.environ.get("STUDYLIB_SCHEDULER") or None
    start = time.monotonic()
    if scheduler is not None:
        results = _run_dask(fn, tasks, scheduler, desc)
    elif (workers or 1) == 1 or len(tasks) == 1:
        results = [fn(**task) for task in progress(tasks, desc=desc)]
    else:
        results = _run_local(fn, tasks, workers, desc)
    report(summary(desc, results, time.monotonic() - start))
    return results


def summary(desc: str, results: list, seconds: float) -> str:
    """One line about a finished grid: ``"<desc>: 128 runs, 7.0 min, 3 from cache"``."""
    cached = [r["from_cache"] for r in results if isinstance(r, dict) and "from_cache" in r]
    took = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
    line = f"{desc}: {len(results)} run{'s' * (len(results) != 1)}, {took}"
    return line + (f", {sum(cached)} from cache" if cached else "")


def _run_local(fn, tasks, workers, desc):
    threads = max(1, (os.cpu_count() or 1) // workers)
    results: list[Any] = [None] * len(tasks)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(threads,)) as pool:
        futures = {pool.submit(fn, **task): i for i, task in enumerate(tasks)}
        for fut in progress(as_completed(futures), total=len(tasks), desc=desc):
            results[futures[fut]] = fut.result()
    return results


def _run_dask(fn, tasks, scheduler, desc):
    from distributed import Client, as_completed as dask_completed
    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        futures = [client.submit(fn, pure=False, **task) for task in tasks]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(tasks)
        for fut in progress(dask_completed(futures), total=len(tasks), desc=desc):
            results[index[fut.key]] = fut.result()
        return results
    finally:
        if client is not scheduler:
            client.close()
