"""The study's data: offline stand-ins read from installed assets, the originals by name for online users,
digit noise and domains, and the catalogue of which stand-in replaces which original.

- :mod:`studylib.data.loaders`: every data set as a :class:`~studylib.data.loaders.Dataset` (``load(name)``);
- :mod:`studylib.data.assets`: the registry packages the data and weights come from, and their install;
- :mod:`studylib.data.domains`: image noise, label noise and digit domains (model-information chapter);
- :mod:`studylib.data.catalog`: the table of originals and stand-ins ("data and models" page).
"""
from .loaders import LOADERS, ORIGINALS, Dataset, OfflineError, load, load_original, require_online

__all__ = ["Dataset", "LOADERS", "ORIGINALS", "OfflineError", "load", "load_original", "require_online"]
