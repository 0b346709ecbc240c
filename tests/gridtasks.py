"""Helpers of the executor and command-line tests: module-level task functions (a spawned worker imports them by
name) and the processes a run left behind."""
import os
import time

import torch

from studylib.platform.cache import RunResult, cached_run


def sleepy(i: int, log: str, fail: bool = False) -> int:
    with open(log, "a") as f:
        f.write(f"{i}\n")
    if fail:
        raise ValueError(f"task {i} cannot run")
    time.sleep(4)
    return i


def train(p: dict) -> RunResult:
    """An MLP trained with SGD on random data: reductions large enough that 1 and 2 torch threads round apart."""
    g = torch.Generator().manual_seed(p["seed"])
    x, y = torch.randn(2000, 784, generator=g), torch.randint(0, 10, (2000,), generator=g)
    torch.manual_seed(p["seed"])
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(10):
        for idx in torch.arange(2000).split(128):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return RunResult([], {"pid": os.getpid()}, model.state_dict())


def cached_training(root: str, seed: int) -> dict:
    run = cached_run("threads", {"seed": seed}, train, root=root)
    return {"weights": run.weights(), "from_cache": run.from_cache}


def processes_marked(mark: str) -> list:
    """The live processes whose environment holds ``STUDYLIB_TEST_MARK=mark``: a run and every process it started."""
    import psutil
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("STUDYLIB_TEST_MARK") == mark:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found
