"""The grid executor: fail fast, naming the task; the same numbers whatever the number of workers."""
import time

import pytest
import torch

from studylib.platform.executor import TaskFailed, run_grid

import gridtasks


def test_a_failing_task_stops_the_grid_at_once_naming_the_task_and_cancelling_the_queue(tmp_path):
    log = tmp_path / "started"
    tasks = [{"i": 0, "log": str(log), "fail": True}] + [{"i": i, "log": str(log)} for i in range(1, 6)]
    with pytest.raises(TaskFailed, match=r"the task \(i=0, .*fail=True\) failed: ValueError: task 0 cannot run"):
        run_grid(gridtasks.sleepy, tasks, workers=2)
    time.sleep(1)
    started = log.read_text().split()
    assert len(started) <= 2  # the failing task and at most the one beside it: the queue never ran
    with pytest.raises(TaskFailed, match="task 0 cannot run"):  # in-process grids say the same
        run_grid(gridtasks.sleepy, tasks[:1], workers=1)


def test_the_same_run_gives_identical_weights_with_one_and_two_workers(tmp_path):
    torch.set_num_threads(2)  # the notebook's own count: the run trains with one thread all the same
    tasks = [{"seed": s} for s in (0, 1)]
    serial = run_grid(gridtasks.cached_training, [{"root": str(tmp_path / "a"), **t} for t in tasks], workers=1)
    pooled = run_grid(gridtasks.cached_training, [{"root": str(tmp_path / "b"), **t} for t in tasks], workers=2)
    for one, two in zip(serial, pooled):
        assert not one["from_cache"] and not two["from_cache"]
        for name in one["weights"]:
            assert torch.equal(one["weights"][name], two["weights"][name]), name
    assert torch.get_num_threads() == 2  # restored after each run
    unruled = gridtasks.train({"seed": 0}).weights  # the same training on this process's two threads ...
    assert not all(torch.equal(unruled[k], serial[0]["weights"][k]) for k in unruled)  # ... rounds otherwise


# A kernel installs Python's SIGINT handler while a cell runs (ipykernel's pre_handler_hook); the script does the same,
# since a process started as a background job of a non-interactive shell (`make test &`) inherits SIGINT ignored.
INTERRUPTED = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {tests!r})
from studylib.platform.executor import run_grid
import gridtasks
run_grid(gridtasks.sleepy, [{{"i": i, "log": {log!r}}} for i in range(6)], workers=2)
"""


def test_an_interrupt_ends_the_grids_workers_as_interrupt_kernel_does(tmp_path):
    """SIGINT to the process running a 2-worker grid (what JupyterLab's "interrupt kernel" sends the kernel) ends
    the grid at once: its workers are terminated, the queued tasks never start."""
    import os
    import signal
    import subprocess
    import sys
    import uuid
    from pathlib import Path
    log = tmp_path / "started"
    mark = uuid.uuid4().hex
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED.format(tests=str(Path(__file__).parent), log=str(log))],
                            env={**os.environ, "STUDYLIB_TEST_MARK": mark}, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while (not log.exists() or len(log.read_text().split()) < 2) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    time.sleep(0.5)
    assert gridtasks.processes_marked(mark) == [] and len(log.read_text().split()) == 2  # no worker left, no queued task started


def test_a_failing_task_on_dask_cancels_the_other_futures(tmp_path):
    from distributed import Client, LocalCluster
    log = tmp_path / "started"
    tasks = [{"i": 0, "log": str(log), "fail": True}] + [{"i": i, "log": str(log)} for i in range(1, 6)]
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        with pytest.raises(TaskFailed, match=r"the task \(i=0, .*fail=True\) failed: ValueError: task 0 cannot run"):
            run_grid(gridtasks.sleepy, tasks, scheduler=client)
        time.sleep(1)
        # the failing task, the one beside it, and at most one its thread took before the cancel arrived: the rest of
        # the queue was cancelled and never started
        assert len(log.read_text().split()) <= 3
