"""The study's metrics: weights in, numbers out, for any torch model.

Used by every chapter. Needs torch, numpy, scipy and pandas only; importing it pulls in neither
transformers, papermill nor matplotlib.

- :mod:`~studylib.metrics.esd`: empirical spectral densities of weight matrices, their heavy-tailed metrics;
- :mod:`~studylib.metrics.powerlaw`: the power-law tail fit behind alpha (powerlaw 1.5's, vectorised);
- :mod:`~studylib.metrics.iiw`: information in weights, three estimators, any parameter grouping;
- :mod:`~studylib.metrics.taylor`: the error of the second-order expansion behind the IIW estimator;
- :mod:`~studylib.metrics.utilization`: layer utilization and contribution (distances to initial weights);
- :mod:`~studylib.metrics.mdl`: prequential codelength and model information, in bits;
- :mod:`~studylib.metrics.baselines`: Jiang et al. (2020)'s baseline measures (norms, margin, flatness).

A batch, for the metrics that run a model, is a dict of the model's keyword inputs plus ``labels``; a plain
module's single tensor input is under ``x`` (:mod:`studylib.core`). The IIW function,
:func:`studylib.metrics.iiw.iiw`, is exported as ``information_in_weights`` (the module keeps the name ``iiw``).
"""
from .esd import (alpha_interval, analyze, eigenvalues, esd_distance, layer_matrices, marchenko_pastur_edge,
                  shuffle_entries, spectral_metrics, summarize, tracy_widom_scale)
from .iiw import bert_groups, module_groups, per_example_diag, per_example_directional, weight_deltas, weight_groups
from .iiw import iiw as information_in_weights
from .mdl import (Codelength, Distillation, TrainSpec, bits, block_ends, model_information,
                  prequential_codelength)
from .powerlaw import PowerLawFit, fit_power_law
from .taylor import (abs_deltas, delta_quantiles, fisher_quadratics, gaussian_error_curves, gaussian_kl,
                     gaussian_kl_quadratic, kl_path, predictive_kl)
from .utilization import layer_contributions, layer_utilization, linear_layers, with_layers_reset

__all__ = [
    # ESD (seeds 002, 004)
    "analyze", "layer_matrices", "eigenvalues", "spectral_metrics", "summarize", "alpha_interval",
    "marchenko_pastur_edge", "tracy_widom_scale", "shuffle_entries", "esd_distance",
    "fit_power_law", "PowerLawFit",
    # information in weights and its Taylor error (seed 000)
    "information_in_weights", "bert_groups", "module_groups", "weight_groups", "weight_deltas",
    "per_example_directional", "per_example_diag",
    "gaussian_kl", "gaussian_kl_quadratic", "gaussian_error_curves", "kl_path", "fisher_quadratics",
    "predictive_kl", "abs_deltas", "delta_quantiles",
    # layer utilization (seed 001)
    "layer_utilization", "layer_contributions", "with_layers_reset", "linear_layers",
    # model information (seed 003)
    "prequential_codelength", "model_information", "block_ends", "bits", "TrainSpec", "Distillation", "Codelength",
]
