"""The head-to-head chapter's model zoo: one cacheable run per model, trained to a training-loss target and then
measured with every weight-based measure of the book and Jiang et al. (2020)'s baselines.

Used by the chapter "Head to head" (through :mod:`studylib.studies.head_to_head`). A model is a ReLU MLP
(:func:`studylib.nets.mlp`, ``depth`` hidden layers of ``width``) on Fashion-MNIST images average-pooled by
``pool``; a fraction ``label_noise`` of its training labels (and of its coding set's) is shuffled
(:func:`studylib.data.domains.shuffle_labels`). It trains with SGD (momentum 0.9, ``weight_decay``) until its
mean training cross-entropy over an epoch falls below ``target_loss``, as Jiang et al. stop at 0.01, or
``max_epochs`` run out (then it is marked not converged).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .. import core, data, nets, training
from ..data.domains import shuffle_labels
from ..metrics import baselines, esd, iiw, mdl
from ..metrics.utilization import layer_utilization
from ..platform.cache import RunResult

#: the hyperparameters a zoo varies (each a run parameter)
AXES = ("depth", "width", "lr", "batch_size", "weight_decay", "label_noise")
#: the ESD averages every model gets (:data:`studylib.metrics.esd.AVERAGED` less the stable rank)
ESD_MEASURES = ("alpha", "alpha_weighted", "log_alpha_norm", "log_norm", "log_spectral_norm")
MOMENTUM = 0.9


@dataclass(frozen=True)
class ZooParams:
    """The parameters of one zoo model (:func:`zoo_run`, its cache key): the :data:`AXES`; ``seed`` (initialisation,
    batches, label noise) and ``data_seed`` (the one draw of examples the whole zoo shares); ``n_train`` training,
    ``k`` coding and ``n_test`` test examples of images pooled by ``pool``; the stopping rule (``target_loss``,
    ``max_epochs``); the model-information codes' budget (``code_*``, :func:`code_spec`); the PAC-Bayes flatness
    bisection's noise draws (``flatness_samples``)."""
    depth: int
    width: int
    lr: float
    batch_size: int
    weight_decay: float
    label_noise: float
    seed: int
    data_seed: int = 0
    n_train: int = 1000
    n_test: int = 2000
    k: int = 500
    pool: int = 2
    target_loss: float = 0.01
    max_epochs: int = 1000
    code_min_steps: int = 100
    code_max_steps: int = 300
    code_eval_every: int = 25
    code_patience: int = 2
    flatness_samples: int = 10
    device: str = "auto"


def zoo_data(p: ZooParams) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The run's ``train`` and ``code`` sets (labels shuffled in a fraction ``label_noise``, each with its own
    seeded draw) and its clean ``test`` set, images pooled by ``pool`` and flattened."""
    ds = data.load("fashion_mnist", seed=p.data_seed, n_train=p.n_train + p.k, n_test=p.n_test)
    flat = lambda x: torch.nn.functional.avg_pool2d(torch.as_tensor(x), p.pool).flatten(1).numpy()
    x, x_test = flat(ds.x_train), flat(ds.x_test)
    n = p.n_train
    y_train = shuffle_labels(ds.y_train[:n], p.label_noise, p.seed)[0]
    y_code = shuffle_labels(ds.y_train[n:], p.label_noise, p.seed + 1)[0]
    return {"train": (x[:n], y_train), "code": (x[n:], y_code), "test": (x_test, ds.y_test)}


def zoo_factory(in_dim: int, depth: int, width: int):
    """The zoo's architecture: ``depth`` hidden ReLU layers of ``width``, ten classes."""
    return lambda: nets.mlp(in_dim, [width] * depth, 10)


def code_spec(p: ZooParams) -> mdl.TrainSpec:
    """The training budget of the prequential codes of the model-information measure (Adam, as in its chapter)."""
    return mdl.TrainSpec(min_steps=p.code_min_steps, max_steps=p.code_max_steps, eval_every=p.code_eval_every,
                         patience=p.code_patience)


def zoo_run(p: ZooParams) -> RunResult:
    """Train one zoo model and measure it (the module docstring). Metrics: the losses, accuracies and gaps, whether
    it converged, and every measure."""
    dev = core.device(p.device)
    sets = zoo_data(p)
    x, y = sets["train"]
    make = zoo_factory(x.shape[1], p.depth, p.width)
    torch.manual_seed(p.seed)
    model = make()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    fit = training.train_sgd(model, x, y, p.lr, MOMENTUM, p.batch_size, p.max_epochs, "plateau",
                    patience=p.max_epochs, interpolation_loss=p.target_loss, seed=p.seed, device=dev,
                    weight_decay=p.weight_decay)
    model.eval()
    scores = {s: training.evaluate(model, core.array_batches(*sets[s], 2048), dev) for s in ("train", "test")}
    out = {"epochs": fit["epochs"], "stop_reason": fit["stop_reason"], "converged": fit["stop_reason"] == "interpolated",
           **{f"{s}_{m}": scores[s][m] for s in scores for m in ("loss", "acc")},
           "gap": scores["train"]["acc"] - scores["test"]["acc"], "loss_gap": scores["test"]["loss"] - scores["train"]["loss"]}
    if not all(math.isfinite(out[k]) for k in ("train_loss", "test_loss")):
        return RunResult([], out)
    out.update(measures(model, init, make, sets, p, dev))
    return RunResult([], out)


def measures(model, init: dict, make, sets: dict, p: ZooParams, dev) -> dict:
    """Every measure of one trained model (see the chapter's measure table): IIW (``fisher``, ``pib``), distance from
    initialisation (whole and final layer), the ESD averages, model information, and Jiang et al.'s baselines; and,
    beside them, the information and test accuracy of the same architecture early-stopped (``early_*``)."""
    x, y = sets["train"]
    batches = core.array_batches(x, y, 256)
    out = {f"iiw_{e}": iiw.iiw(model, init, batches, e, groups=iiw.module_groups, seed=p.seed)["total"]
           for e in ("fisher", "pib")}
    util = layer_utilization(model, init).utilization.to_numpy()
    out.update(distance_init=float(np.sqrt((util ** 2).sum())), distance_init_final=float(util[-1]))
    spectra = esd.analyze(model, device=dev)
    out.update({f"esd_{m}": float(spectra[m].mean()) for m in ESD_MEASURES})
    info = mdl.model_information(make, x, y, *sets["code"], 10, spec=code_spec(p), seed=p.seed, device=dev,
                                 init_state=init, final_state={k: v.cpu() for k, v in model.state_dict().items()})
    # The same code of the same examples from weights trained the way the model-information chapter trains them
    # (Adam, early-stopped on held-out examples): the protocol of seed 003, beside the zoo's interpolating one.
    early = mdl.model_information(make, x, y, *sets["code"], 10, spec=code_spec(p), seed=p.seed, device=dev,
                                  init_state=init)
    stopped = make()
    stopped.load_state_dict(early["final_state"])
    out.update(model_information=info["info_bits"], early_information=early["info_bits"],
               early_test_acc=training.evaluate(stopped, core.array_batches(*sets["test"], 2048), dev)["acc"])
    logits = training.predict(model, core.array_batches(x, None, 2048), dev)
    out.update(num_parameters=nets.num_parameters(model), log_spectral_product=baselines.log_spectral_product(model),
               log_path_norm=baselines.log_path_norm(model, (x.shape[1],)),
               inverse_margin=baselines.inverse_margin(logits, y),
               pacbayes_flatness=baselines.pacbayes_flatness(model, x, y, samples=p.flatness_samples,
                                                             seed=p.seed))
    return out
