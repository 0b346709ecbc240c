"""Every notebook's parameters and its ``quick`` / ``standard`` / ``paper`` profiles, in one place.

``quick``: CI, every notebook in a few minutes. ``standard``: the published book, about two hours
for the whole book on a 2-core CPU. ``paper``: the papers' scale, for a GPU.
"""
from __future__ import annotations

from dataclasses import dataclass

from .params import PROFILES, Param


@dataclass(frozen=True)
class Notebook:
    title: str
    params: dict[str, Param]
    profiles: dict[str, dict]

    def __post_init__(self):
        for name in PROFILES:
            missing = set(self.params) ^ set(self.profiles.get(name, {}))
            if missing:
                raise ValueError(f"{self.title}: profile {name!r} does not match the parameters: {sorted(missing)}")


COMMON = {
    "SEED": Param(int, "random seed for data splits, initialisation and training", low=0),
    "DEVICE": Param(str, "where heavy work runs ('auto': CUDA when present, else CPU)",
                    choices=("auto", "cpu", "cuda")),
}


def _same(**values):
    """A profile's values on top of the common defaults."""
    return {"SEED": 0, "DEVICE": "auto", **values}


NOTEBOOKS: dict[str, Notebook] = {
    "00_data_and_models": Notebook(
        "Data and models",
        {**COMMON,
         "CAP": Param(int, "largest split size loaded per data set for the tour (none: all)", low=10, nullable=True),
         "DEMO_EPOCHS": Param(int, "epochs of the cached demonstration run (an MLP on UCI digits)", low=1, high=500),
         "DEMO_WIDTH": Param(int, "hidden width of the demonstration MLP", low=1, high=4096)},
        {"quick": _same(CAP=300, DEMO_EPOCHS=3, DEMO_WIDTH=32),
         "standard": _same(CAP=None, DEMO_EPOCHS=30, DEMO_WIDTH=128),
         "paper": _same(CAP=None, DEMO_EPOCHS=100, DEMO_WIDTH=512)}),
}
