"""Cacheable trained runs: each a function ``p -> RunResult`` of plain JSON parameters, stored by
:func:`studylib.platform.cache.cached_run` under a key of its parameters and the code it reaches.

- :mod:`~studylib.runs.mlp`: a plain MLP on an image or vector data set ("data and models", ESD audit);
- :mod:`~studylib.runs.finetune`: encoders fine-tuned with IIW recorded per epoch (the three IIW chapters);
- :mod:`~studylib.runs.utilization`: the layer-utilization grid's runs;
- :mod:`~studylib.runs.mdl`: the model-information chapter's runs;
- :mod:`~studylib.runs.zoo`: the head-to-head chapter's zoo, one model a run.
"""
