"""Every notebook's parameters and its ``quick`` / ``standard`` / ``paper`` profiles, in one place, and their
resolution. Used by every chapter's first code cell::

    P = profiles.resolve("00_data_and_models", globals())

A notebook's ``parameters`` cell sets ``PROFILE`` and every other parameter to ``...``, which means "the value of
the chosen profile". A value given with papermill ``-p`` or the CLI overrides it; ``None`` means "no value" and only
a nullable parameter accepts it (:mod:`studylib.platform.params`). Each notebook's :class:`~.params.Rule` s tie
parameters together (step budgets, series lengths, orders) and are checked with the values.

``quick``: CI, every notebook in a few minutes. ``standard``: the published book (its measured run times
are on the "Rerun it" page). ``paper``: the papers' scale, for a GPU.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .params import PROFILES, Param, ParameterError, Rule, check

_UPPER = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True)
class Notebook:
    title: str
    params: dict[str, Param]
    profiles: dict[str, dict]
    rules: tuple[Rule, ...] = ()

    def __post_init__(self):
        unknown = {n for rule in self.rules for n in rule.names} - set(self.params)
        if unknown:
            raise ValueError(f"{self.title}: rules name unknown parameters {sorted(unknown)}")
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
    "05_esd_audit": Notebook(
        "ESD audit",
        {**COMMON,
         "SERIES_WIDTHS": Param(list, "hidden widths of the trained MLP series (at least 6 models for the regressions)",
                                item=int, low=4, high=8192),
         "SERIES_EPOCHS": Param(int, "training epochs of every member of the series", low=1, high=1000),
         "SERIES_TRAIN": Param(int, "Fashion-MNIST training examples per model (none: all 60,000)", low=100,
                               high=60000, nullable=True),
         "DEFICIENT_TRAIN": Param(int, "training examples of the deficiently trained twin (GPT vs GPT-2 analogue)",
                                  low=10, high=60000),
         "QUALITY_TRAIN": Param(list, "training-set sizes of the quality series (one MLP shape, at least 8 models)",
                                item=int, low=10, high=60000),
         "QUALITY_WIDTH": Param(int, "hidden width of every member of the quality series", low=4, high=8192),
         "QUALITY_STEPS": Param(int, "optimiser steps (batch 128) of every member of the quality series", low=1,
                                high=1000000),
         "COLLAPSE_WIDTH": Param(int, "hidden width of the scale-collapse twins (deep MLPs trained on SERIES_TRAIN and "
                                      "on DEFICIENT_TRAIN examples for SERIES_EPOCHS)", low=4, high=8192),
         "COLLAPSE_DEPTH": Param(int, "hidden layers of the scale-collapse twins (their weight matrices: one more)",
                                 low=2, high=64),
         "COLLAPSE_SEEDS": Param(int, "seeds of the scale-collapse twins: SEED, SEED + 1, ... (at least 3 for a verdict)",
                                 low=2, high=50),
         "FIG1_LAYER": Param(str, "the MiniLM-L6 matrix shown in the Fig. 1 analogue"),
         "N_BOOT": Param(int, "bootstrap resamples for confidence intervals", low=10, high=100000),
         "WORKERS": Param(int, "local worker processes for the training grid", low=1, high=64)},
        {"quick": _same(SERIES_WIDTHS=[16, 24, 32, 48, 64, 96], SERIES_EPOCHS=1, SERIES_TRAIN=3000,
                        DEFICIENT_TRAIN=300, QUALITY_TRAIN=[100, 150, 200, 300, 500, 800, 1200, 2000], QUALITY_WIDTH=32,
                        QUALITY_STEPS=60, COLLAPSE_WIDTH=32, COLLAPSE_DEPTH=6, COLLAPSE_SEEDS=3, FIG1_LAYER="encoder.layer.3.intermediate.dense", N_BOOT=100, WORKERS=2),
         "standard": _same(SERIES_WIDTHS=[32, 64, 128, 256, 512, 1024], SERIES_EPOCHS=10, SERIES_TRAIN=None,
                           DEFICIENT_TRAIN=1000, QUALITY_TRAIN=[250, 500, 1000, 2000, 4000, 8000, 16000, 32000],
                           QUALITY_WIDTH=256, QUALITY_STEPS=2000, COLLAPSE_WIDTH=64, COLLAPSE_DEPTH=8,
                           COLLAPSE_SEEDS=5, FIG1_LAYER="encoder.layer.3.intermediate.dense", N_BOOT=1000,
                           WORKERS=2),
         "paper": _same(SERIES_WIDTHS=[64, 128, 256, 512, 1024, 2048, 4096], SERIES_EPOCHS=30, SERIES_TRAIN=None,
                        DEFICIENT_TRAIN=1000, QUALITY_TRAIN=[250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 60000],
                        QUALITY_WIDTH=512, QUALITY_STEPS=10000, COLLAPSE_WIDTH=256, COLLAPSE_DEPTH=12,
                        COLLAPSE_SEEDS=5, FIG1_LAYER="encoder.layer.3.intermediate.dense", N_BOOT=2000,
                        WORKERS=1)},
        (Rule(("SERIES_WIDTHS",), lambda w: len(set(w)) >= 6, "SERIES_WIDTHS needs at least 6 distinct widths (the "
                                                             "series regressions)"),
         Rule(("QUALITY_TRAIN",), lambda n: len(set(n)) >= 8, "QUALITY_TRAIN needs at least 8 distinct sizes"),
         Rule(("DEFICIENT_TRAIN", "SERIES_TRAIN"), lambda d, n: d < (n or 60000),
              "DEFICIENT_TRAIN must be smaller than SERIES_TRAIN (none: 60,000): the twin is trained on fewer examples"))),
    "04_layer_utilization": Notebook(
        "Layer utilization and re-initialisation",
        {**COMMON,
         "DATASETS": Param(list, "data sets of the grid", item=str, choices=("mnist", "fashion_mnist", "uci_digits")),
         "WIDTHS": Param(list, "hidden widths of the 5-layer MLP (cross the interpolation threshold)", item=int,
                         low=1, high=8192),
         "NOISES": Param(list, "fractions of training labels shuffled", item=float, low=0.0, high=1.0),
         "REPEATS": Param(int, "independent runs per (width, noise) cell", low=1, high=100),
         "N_TRAIN": Param(int, "training examples per run (none: the whole training split)", low=50, nullable=True),
         "N_TEST": Param(int, "test examples per run", low=50),
         "STOP": Param(str, "how training ends: 'fixed' (exactly MAX_EPOCHS, as the paper) or 'plateau' (the "
                            "training loss stops improving or falls below INTERPOLATION_LOSS)", choices=("fixed", "plateau")),
         "MAX_EPOCHS": Param(int, "training epochs ('fixed'), or the epoch cap ('plateau')", low=4, high=100000),
         "PATIENCE": Param(int, "'plateau' only: epochs without a 0.1% improvement of the training loss that end "
                                "training", low=1, high=10000),
         "INTERPOLATION_LOSS": Param(float, "'plateau' only: training loss below which training ends (none: never)",
                                     low=0.0, high=10.0, nullable=True),
         "LR": Param(float, "SGD learning rate (momentum 0.9, batch 128)", low=1e-6, high=10.0),
         "WORKERS": Param(int, "local worker processes for the grid", low=1, high=64)},
        {"quick": _same(DATASETS=["mnist", "fashion_mnist"], WIDTHS=[4, 16, 64], NOISES=[0.0, 0.5], REPEATS=1,
                        N_TRAIN=500, N_TEST=500, STOP="fixed", MAX_EPOCHS=60, PATIENCE=10, INTERPOLATION_LOSS=1e-4,
                        LR=0.05, WORKERS=2),
         "standard": _same(DATASETS=["mnist", "fashion_mnist"], WIDTHS=[2, 4, 8, 16, 32, 64, 128, 256],
                           NOISES=[0.0, 0.2, 0.4, 0.6], REPEATS=3, N_TRAIN=1000, N_TEST=2000, STOP="fixed",
                           MAX_EPOCHS=800, PATIENCE=50, INTERPOLATION_LOSS=1e-4, LR=0.05, WORKERS=2),
         "paper": _same(DATASETS=["mnist", "fashion_mnist"], WIDTHS=[2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
                        NOISES=[0.0, 0.2, 0.4, 0.6, 0.8], REPEATS=3, N_TRAIN=None, N_TEST=2000, STOP="fixed",
                        MAX_EPOCHS=10000, PATIENCE=200, INTERPOLATION_LOSS=1e-4, LR=0.05, WORKERS=2)}),
    "01_iiw_pretrained_vs_random": Notebook(
        "IIW of pre-trained vs randomly initialised models",
        {**COMMON,
         "MODELS": Param(list, "encoders to fine-tune", item=str, choices=("minilm_l6", "minilm_l3")),
         "TASKS": Param(list, "text tasks (stand-ins for GLUE)", item=str,
                        choices=("rotten_tomatoes", "reuters_pairs", "topic_claims", "topic_pairs", "dialogue_pairs",
                                 "election_tweets", "newsgroups", "reuters_r8")),
         "REPEATS": Param(int, "training seeds per cell: SEED, SEED + 1, ...", low=1, high=50),
         "N_TRAIN": Param(int, "training examples per task, split 9:1 into train and dev (none: all)", low=20,
                          nullable=True),
         "N_TEST": Param(int, "test examples per task", low=10),
         "N_IIW": Param(int, "training examples the Fisher estimators use (the PIB ones use the whole train split)",
                        low=4),
         "MAX_LEN": Param(int, "tokens per example (truncated; batches padded to their longest example)", low=8,
                          high=512),
         "EPOCHS": Param(int, "fine-tuning epochs", low=1, high=100),
         "LR": Param(float, "peak Adam learning rate (linear warm-up over 10% of the steps)", low=1e-7, high=1.0),
         "ESTIMATORS": Param(list, "IIW estimators recorded; the first is the headline", item=str,
                             choices=("pib", "pib_all", "fisher", "fisher_diag")),
         "REFERENCES": Param(list, "reference weights theta_0 IIW is measured against; the last is the headline",
                             item=str, choices=("init", "prior_same", "prior_fresh")),
         "PIB_SEEDS": Param(int, "gradient-sampling seeds the 'pib' estimator is averaged over (at epoch 0 and the "
                                 "last epoch; one in between)", low=1, high=20),
         "EXPERIMENT_TASK": Param(str, "task of the experiments that explain the verdict (learning rate, size, "
                                       "norm-matched twin)", choices=("rotten_tomatoes", "reuters_pairs", "topic_claims")),
         "LRS": Param(list, "peak learning rates of the training-stage experiment", item=float, low=1e-7, high=1.0),
         "SIZES": Param(list, "training-set sizes of the scale experiment", item=int, low=20),
         "WORKERS": Param(int, "local worker processes for the grid", low=1, high=64)},
        {"quick": _same(SEED=42, MODELS=["minilm_l3"], TASKS=["rotten_tomatoes", "reuters_pairs", "topic_claims"],
                        REPEATS=1, N_TRAIN=60, N_TEST=40, N_IIW=16, MAX_LEN=32, EPOCHS=1, LR=4e-5,
                        ESTIMATORS=["pib", "fisher"], REFERENCES=["init", "prior_same", "prior_fresh"], PIB_SEEDS=1,
                        EXPERIMENT_TASK="topic_claims", LRS=[4e-5, 1e-4], SIZES=[40, 60], WORKERS=2),
         "standard": _same(SEED=42, MODELS=["minilm_l3"], TASKS=["rotten_tomatoes", "reuters_pairs", "topic_claims"],
                           REPEATS=3, N_TRAIN=1000, N_TEST=300, N_IIW=64, MAX_LEN=48, EPOCHS=3, LR=1e-4,
                           ESTIMATORS=["pib", "fisher"], REFERENCES=["init", "prior_same", "prior_fresh"],
                           PIB_SEEDS=3, EXPERIMENT_TASK="topic_claims", LRS=[1e-4, 3e-4],
                           SIZES=[500, 1000], WORKERS=2),
         "paper": _same(SEED=42, MODELS=["minilm_l6", "minilm_l3"],
                        TASKS=["rotten_tomatoes", "reuters_pairs", "topic_claims", "election_tweets", "reuters_r8"],
                        REPEATS=5, N_TRAIN=None, N_TEST=2000, N_IIW=512, MAX_LEN=128, EPOCHS=5, LR=4e-5,
                        ESTIMATORS=["pib", "pib_all", "fisher"], REFERENCES=["init", "prior_same", "prior_fresh"],
                        PIB_SEEDS=3, EXPERIMENT_TASK="topic_claims", LRS=[1e-5, 3e-5, 4e-5, 1e-4, 3e-4],
                        SIZES=[1000, 2000, 4000], WORKERS=1)}),
}

# The fine-tuning chapter shares the pre-trained vs random chapter's settings (so its FT runs are the same
# cached runs) and fine-tunes the first encoder only.
_IIW1 = NOTEBOOKS["01_iiw_pretrained_vs_random"]
_EXPERIMENTS = ("EXPERIMENT_TASK", "LRS", "SIZES")  # the first chapter's own experiments
_IIW_SHARED = {k: v for k, v in _IIW1.params.items() if k not in _EXPERIMENTS}
_IIW_SHARED_PROFILES = {name: {k: v for k, v in values.items() if k not in _EXPERIMENTS}
                        for name, values in _IIW1.profiles.items()}
NOTEBOOKS["02_iiw_finetuning"] = Notebook(
    "IIW across fine-tuning epochs, and FT vs LP-FT", dict(_IIW_SHARED),
    {name: {**values, "MODELS": values["MODELS"][:1], **({"EPOCHS": 3} if name == "quick" else {})}
     for name, values in _IIW_SHARED_PROFILES.items()})

# The Taylor-error chapter measures the pre-trained FT runs of the first chapter (the same cache entries) for
# the first encoder, and walks each back towards theta0 at T_POINTS positions.
NOTEBOOKS["03_iiw_taylor_error"] = Notebook(
    "The Taylor error behind the IIW estimator",
    {**_IIW_SHARED,
     "T_POINTS": Param(int, "positions t on the path theta_Z - t * delta, log-spaced from 0.01 to 1", low=2, high=200),
     "GAUSS_DIM": Param(int, "dimension of the Gaussian example", low=1, high=2000)},
    {name: {**values, "MODELS": values["MODELS"][:1], "T_POINTS": 8 if name == "quick" else 15, "GAUSS_DIM": 10}
     for name, values in _IIW_SHARED_PROFILES.items()})

_MDL_TASKS = ("mnist", "fashion_mnist", "uci_digits", "mnist1d", "cluttered_mnist")
NOTEBOOKS["06_model_information"] = Notebook(
    "Model information",
    {**COMMON,
     "TASKS": Param(list, "ten-class tasks of the difficulty comparison", item=str, choices=_MDL_TASKS),
     "N_TRAIN": Param(int, "training examples of every trained model", low=20),
     "K_CODE": Param(int, "coding examples k, outside the training set", low=20),
     "N_TEST": Param(int, "test examples for accuracy and confidence", low=10),
     "WIDTH": Param(int, "hidden width of the two-layer MLP", low=1, high=4096),
     "MIN_STEPS": Param(int, "Adam steps every training runs at least, whatever its number of examples", low=0,
                        high=1000000),
     "MAX_STEPS": Param(int, "Adam steps every training runs at most (>= MIN_STEPS)", low=1, high=1000000),
     "EVAL_EVERY": Param(int, "Adam steps between two held-out evaluations (early stopping)", low=1, high=100000),
     "PATIENCE": Param(int, "held-out evaluations without a lower loss that end training, once MIN_STEPS have run",
                       low=1, high=1000),
     "NOISE_LEVELS": Param(list, "fractions of noisy MNIST examples (0 first)", item=float, low=0.0, high=1.0),
     "CENTER_SQUARES": Param(list, "sides in pixels of the central square removed from every MNIST image (0 first)",
                             item=int, low=0, high=28),
     "DOMAINS": Param(list, "digit domains of the similarity study", item=str,
                      choices=("mnist", "uci_digits", "cluttered_mnist")),
     "N_FEATURES": Param(int, "images per domain for the feature distances d1, d2", low=10),
     "CAP_WIDTHS": Param(list, "MLP widths of the capacity study", item=int, low=1, high=4096),
     "CAP_CLASSES": Param(list, "numbers of Fashion-MNIST classes of the capacity study (N_TRAIN examples each)",
                          item=int, low=2, high=10),
     "CAP_N_TRAIN": Param(list, "larger training sets of all ten classes, the capacity study's largest tasks", item=int,
                          low=20, high=50000),
     "RESNET_WIDTH": Param(int, "first-stage width of the ablated ResNet (stages w, 2w, 4w)", low=1, high=256),
     "ABLATION_K": Param(int, "coding examples k of the ResNet ablation (at most K_CODE)", low=20),
     "ABLATION_MIN_STEPS": Param(int, "Adam steps every training of the ResNet ablation runs at least (its 11 codes of a "
                                      "convolutional net per seed are the chapter's heaviest work)", low=0, high=1000000),
     "ABLATION_MAX_STEPS": Param(int, "Adam steps every training of the ResNet ablation runs at most", low=1,
                                 high=1000000),
     "ABLATION_PATIENCE": Param(int, "held-out evaluations without a lower loss that end an ablation training", low=1,
                                high=1000),
     "TEACHER_WIDTHS": Param(list, "MLP widths of the teachers, smallest first", item=int, low=1, high=4096),
     "STUDENT_WIDTH": Param(int, "MLP width of the student", low=1, high=4096),
     "ALPHAS": Param(list, "distillation weights alpha (temperature 4)", item=float, low=0.0, high=1.0),
     "POOL": Param(int, "extra labelled Fashion-MNIST examples, disjoint from the coded ones, that the privileged "
                        "teacher (the distillation control) also trains on", low=10, high=50000),
     "T_SQUARED": Param(bool, "scale the distillation term by T^2 (Hinton et al. 2015; the paper's eq. 17 has no T^2)"),
     "REPEATS": Param(int, "independent seeds per setting (SEED, SEED + 1, ...); the tables show their mean", low=1,
                      high=100),
     "WORKERS": Param(int, "local worker processes for the grids", low=1, high=64)},
    {"quick": _same(TASKS=list(_MDL_TASKS), N_TRAIN=300, K_CODE=200, N_TEST=200, WIDTH=64, MIN_STEPS=40, MAX_STEPS=200,
                    EVAL_EVERY=20, PATIENCE=2,
                    NOISE_LEVELS=[0.0, 0.1, 0.2], CENTER_SQUARES=[0, 14], DOMAINS=["mnist", "uci_digits", "cluttered_mnist"],
                    N_FEATURES=40, CAP_WIDTHS=[4, 32], CAP_CLASSES=[2, 10], CAP_N_TRAIN=[600], RESNET_WIDTH=4,
                    ABLATION_K=100, ABLATION_MIN_STEPS=40, ABLATION_MAX_STEPS=100, ABLATION_PATIENCE=2,
                    TEACHER_WIDTHS=[16, 128], STUDENT_WIDTH=4, ALPHAS=[0.0, 0.5], POOL=300, T_SQUARED=False, REPEATS=1,
                    WORKERS=2),
     "standard": _same(TASKS=["mnist", "fashion_mnist", "mnist1d", "cluttered_mnist"], N_TRAIN=2000, K_CODE=2000,
                       N_TEST=1000, WIDTH=256, MIN_STEPS=500, MAX_STEPS=1000, EVAL_EVERY=50,
                       PATIENCE=5, NOISE_LEVELS=[0.0, 0.05, 0.1, 0.2], CENTER_SQUARES=[0, 8, 12, 16],
                       DOMAINS=["mnist", "uci_digits", "cluttered_mnist"], N_FEATURES=300, CAP_WIDTHS=[4, 16, 64, 256],
                       CAP_CLASSES=[2, 6, 10], CAP_N_TRAIN=[8000], RESNET_WIDTH=8, ABLATION_K=500,
                       ABLATION_MIN_STEPS=100, ABLATION_MAX_STEPS=200, ABLATION_PATIENCE=2, TEACHER_WIDTHS=[16, 64, 256],
                       STUDENT_WIDTH=8, ALPHAS=[0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9], POOL=8000, T_SQUARED=False,
                       REPEATS=3, WORKERS=2),
     "paper": _same(TASKS=["mnist", "fashion_mnist", "mnist1d", "cluttered_mnist"], N_TRAIN=2500, K_CODE=1500,
                    N_TEST=1000, WIDTH=512, MIN_STEPS=1000, MAX_STEPS=20000,
                    EVAL_EVERY=100, PATIENCE=10, NOISE_LEVELS=[0.0, 0.05, 0.1, 0.2],
                    CENTER_SQUARES=[0, 8, 12, 16, 20], DOMAINS=["mnist", "uci_digits", "cluttered_mnist"], N_FEATURES=1000,
                    CAP_WIDTHS=[4, 16, 64, 256, 1024], CAP_CLASSES=[2, 4, 6, 8, 10], CAP_N_TRAIN=[8000, 20000],
                    RESNET_WIDTH=16, ABLATION_K=1500, ABLATION_MIN_STEPS=1000, ABLATION_MAX_STEPS=20000,
                    ABLATION_PATIENCE=10, TEACHER_WIDTHS=[16, 64, 256, 1024], STUDENT_WIDTH=8,
                    ALPHAS=[0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9], POOL=20000, T_SQUARED=False, REPEATS=5, WORKERS=2)},
    (Rule(("MIN_STEPS", "MAX_STEPS"), lambda lo, hi: hi >= max(1, lo), "MAX_STEPS must be at least MIN_STEPS"),
     Rule(("ABLATION_MIN_STEPS", "ABLATION_MAX_STEPS"), lambda lo, hi: hi >= max(1, lo),
          "ABLATION_MAX_STEPS must be at least ABLATION_MIN_STEPS"),
     Rule(("ABLATION_K", "K_CODE"), lambda k, code: k <= code, "ABLATION_K must be at most K_CODE"),
     Rule(("NOISE_LEVELS",), lambda v: v[0] == 0.0, "NOISE_LEVELS must start with 0 (the clean reference)"),
     Rule(("CENTER_SQUARES",), lambda v: v[0] == 0, "CENTER_SQUARES must start with 0 (the whole image)"),
     Rule(("TEACHER_WIDTHS",), lambda v: list(v) == sorted(set(v)), "TEACHER_WIDTHS must be distinct, smallest first")))

NOTEBOOKS["07_head_to_head"] = Notebook(
    "Head to head",
    {**COMMON,
     "DEPTHS": Param(list, "hidden layers of the zoo's MLPs (an axis)", item=int, low=1, high=16),
     "WIDTHS": Param(list, "hidden widths of the zoo's MLPs (an axis)", item=int, low=1, high=8192),
     "LRS": Param(list, "SGD learning rates, momentum 0.9 (an axis)", item=float, low=1e-5, high=2.0),
     "BATCH_SIZES": Param(list, "SGD batch sizes (an axis)", item=int, low=1, high=4096),
     "WEIGHT_DECAYS": Param(list, "SGD weight decays (an axis)", item=float, low=0.0, high=0.1),
     "LABEL_NOISES": Param(list, "fractions of training (and coding) labels shuffled (an axis)", item=float, low=0.0,
                           high=0.9),
     "REPEATS": Param(int, "models per configuration, seeds SEED, SEED + 1, ...", low=1, high=100),
     "N_TRAIN": Param(int, "Fashion-MNIST training examples of every model (one draw for the whole zoo)", low=20),
     "N_TEST": Param(int, "test examples for the generalization gap", low=20),
     "K_CODE": Param(int, "coding examples k of the model-information measure, outside the training set", low=20),
     "POOL": Param(int, "average-pooling factor of the 28 x 28 images (2: 14 x 14 inputs)", choices=(1, 2, 4)),
     "TARGET_LOSS": Param(float, "training cross-entropy at which training stops (Jiang et al.: 0.01)", low=1e-6,
                          high=2.0),
     "MAX_EPOCHS": Param(int, "epochs after which a model that has not reached TARGET_LOSS stops, not converged", low=1,
                         high=100000),
     "CODE_MIN_STEPS": Param(int, "model information: Adam steps every training of its codes runs at least", low=0,
                             high=1000000),
     "CODE_MAX_STEPS": Param(int, "model information: Adam steps every training of its codes runs at most", low=1,
                             high=1000000),
     "CODE_EVAL_EVERY": Param(int, "model information: Adam steps between two held-out evaluations", low=1,
                              high=100000),
     "CODE_PATIENCE": Param(int, "model information: held-out evaluations without a lower loss that end a training",
                            low=1, high=1000),
     "FLATNESS_SAMPLES": Param(int, "noise draws per step of the PAC-Bayes flatness bisection", low=1, high=1000),
     "N_PERM": Param(int, "permutations of each measure across the configurations for Psi's p-value (at least 1499: "
                          "the smallest Holm-adjusted p over the 15 measures, 15 / (N + 1), is then 0.01)", low=1499,
                     high=100000),
     "CMI_PERM": Param(int, "permutations of each measure for the conditional mutual information's p-value (at least "
                            "1499, as N_PERM)", low=1499, high=100000),
     "WORKERS": Param(int, "local worker processes for the zoo (STUDYLIB_SCHEDULER sends it to a Dask cluster)",
                      low=1, high=64)},
    {"quick": _same(DEPTHS=[1, 2], WIDTHS=[16, 64], LRS=[0.05, 0.1], BATCH_SIZES=[32, 64], WEIGHT_DECAYS=[0.0, 1e-4],
                    LABEL_NOISES=[0.0, 0.1], REPEATS=1, N_TRAIN=200, N_TEST=500, K_CODE=100, POOL=2, TARGET_LOSS=0.01,
                    MAX_EPOCHS=400, CODE_MIN_STEPS=40, CODE_MAX_STEPS=100, CODE_EVAL_EVERY=20, CODE_PATIENCE=2,
                    FLATNESS_SAMPLES=5, N_PERM=1499, CMI_PERM=1499, WORKERS=2),
     "standard": _same(DEPTHS=[1, 3], WIDTHS=[64, 256], LRS=[0.02, 0.05], BATCH_SIZES=[32, 64],
                       WEIGHT_DECAYS=[0.0, 1e-4], LABEL_NOISES=[0.0, 0.1], REPEATS=3, N_TRAIN=1000, N_TEST=2000,
                       K_CODE=500, POOL=2, TARGET_LOSS=0.01, MAX_EPOCHS=1000, CODE_MIN_STEPS=100, CODE_MAX_STEPS=300,
                       CODE_EVAL_EVERY=25, CODE_PATIENCE=2, FLATNESS_SAMPLES=10, N_PERM=1499, CMI_PERM=1499,
                       WORKERS=2),
     "paper": _same(DEPTHS=[1, 2, 3], WIDTHS=[64, 256, 1024], LRS=[0.01, 0.02, 0.05], BATCH_SIZES=[32, 64, 128],
                    WEIGHT_DECAYS=[0.0, 1e-4, 5e-4], LABEL_NOISES=[0.0, 0.1, 0.2], REPEATS=2, N_TRAIN=5000,
                    N_TEST=10000, K_CODE=2000, POOL=1, TARGET_LOSS=0.01, MAX_EPOCHS=2000, CODE_MIN_STEPS=500,
                    CODE_MAX_STEPS=1000, CODE_EVAL_EVERY=50, CODE_PATIENCE=5, FLATNESS_SAMPLES=10, N_PERM=1499,
                    CMI_PERM=1499, WORKERS=2)},
    (Rule(("CODE_MIN_STEPS", "CODE_MAX_STEPS"), lambda lo, hi: hi >= max(1, lo),
          "CODE_MAX_STEPS must be at least CODE_MIN_STEPS"),))

# The verdicts page reads the executed chapters' claims: no parameters of its own; it runs last.
NOTEBOOKS["99_verdicts"] = Notebook("Verdicts", {}, {name: {} for name in PROFILES})
# One order everywhere (run-all, the parameters page, the command line): the chapters' own, by their numbers.
NOTEBOOKS = dict(sorted(NOTEBOOKS.items()))


def resolve_values(notebook: str, profile: str | None, given: dict[str, Any]) -> dict[str, Any]:
    """The full parameter set of ``notebook``: the profile's values overridden by ``given`` (a name absent from
    ``given``, or given as ``...``, takes the profile's value), checked one by one and by the notebook's rules."""
    if notebook not in NOTEBOOKS:
        raise ParameterError(f"unknown notebook {notebook!r}; known: {', '.join(NOTEBOOKS)}")
    profile = profile or "standard"
    if profile not in PROFILES:
        raise ParameterError(f"parameter PROFILE={profile!r} is not a profile; PROFILE accepts one of "
                             f"{', '.join(PROFILES)}")
    spec = NOTEBOOKS[notebook]
    if "PROFILE" in given:
        raise ParameterError(f"PROFILE={given['PROFILE']!r} is not a parameter to override: choose the profile with "
                             f"--profile (papermill: -p PROFILE), one of {', '.join(PROFILES)}")
    unknown = sorted(set(given) - set(spec.params))
    if unknown:
        raise ParameterError(f"unknown parameter {', '.join(unknown)} for {notebook}; it accepts "
                             f"PROFILE, {', '.join(spec.params)}")
    values = {"PROFILE": profile}
    for name, param in spec.params.items():
        raw = given.get(name, ...)
        values[name] = check(name, param, spec.profiles[profile][name] if raw is ... else raw)
    for rule in spec.rules:
        rule.check(values)
    return values


def resolve(notebook: str, namespace: dict[str, Any], echo: bool = True) -> dict[str, Any]:
    """Resolve a notebook's parameters from its globals, write the resolved values back into them
    and return them. Every UPPER_CASE global is taken as a parameter, so a misspelt ``-p`` name fails."""
    given = {k: v for k, v in namespace.items() if _UPPER.match(k) and k != "PROFILE"}
    values = resolve_values(notebook, namespace.get("PROFILE"), given)
    namespace.update(values)
    if echo:
        import textwrap
        print(textwrap.fill("Parameters: " + ", ".join(f"{k}={v!r}" for k, v in values.items()), 100,
                            subsequent_indent="    "))
    return values
