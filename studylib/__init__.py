"""studylib: the computations behind the book "Weight-based measures of generalization" (see README.md).

The layers, top to bottom (imports point down; nothing imports a study, and the metrics never import the
runs, the model builders or the data):

- :mod:`studylib.studies`: one module per chapter: its grid over cached runs, the paper's tables, its claims.
- :mod:`studylib.runs`: cacheable trained runs, one function of its parameters each.
- :mod:`studylib.metrics`: weights in, numbers out, for any torch model (ESD and power-law fits, information
  in weights, its Taylor error, layer utilization, prequential codelength). Needs torch, numpy, scipy and
  pandas only; importing it pulls in neither transformers, papermill nor matplotlib.
- Foundations: :mod:`studylib.core` (the device, what a batch is), :mod:`studylib.training` (the training
  loops, the one evaluation), :mod:`studylib.resampling` (the one bootstrap), :mod:`studylib.stats` (taus, series regressions),
  :mod:`studylib.claims` (verdicts), :mod:`studylib.nets` (every model builder), :mod:`studylib.data` (data
  sets, assets, digit domains, the catalogue of stand-ins) and :mod:`studylib.plots` (the book's figures
  and style).
- :mod:`studylib.platform`: the plumbing every layer may use: configuration, run cache, grid executor,
  progress, notebook parameters and profiles, notebook execution and the book build, the command line
  (``python -m studylib``).

Importing any module does nothing beyond definitions.
"""
__version__ = "0.2.0"
