import pytest

from studylib.platform.executor import run_grid


def square_plus(x, y=0):
    return x * x + y


TASKS = [{"x": i, "y": 1} for i in range(6)]
EXPECTED = [i * i + 1 for i in range(6)]


def test_in_process_and_worker_processes_agree():
    assert run_grid(square_plus, TASKS) == EXPECTED
    assert run_grid(square_plus, TASKS, workers=2) == EXPECTED


def test_dask_local_cluster_gives_the_same_results_in_task_order():
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert run_grid(square_plus, TASKS, scheduler=cluster.scheduler_address) == EXPECTED
        with Client(cluster) as client:
            assert run_grid(square_plus, TASKS, scheduler=client) == EXPECTED


def test_bad_worker_count():
    with pytest.raises(ValueError, match="workers must be a positive int"):
        run_grid(square_plus, TASKS, workers=0)
