"""The plumbing: where files live (:mod:`~studylib.platform.config`), the run cache
(:mod:`~studylib.platform.cache`), the grid executor (:mod:`~studylib.platform.executor`), terminal progress
(:mod:`~studylib.platform.progress`), notebook parameters and profiles (:mod:`~studylib.platform.params`,
:mod:`~studylib.platform.profiles`), notebook execution and the book build (:mod:`~studylib.platform.notebooks`)
and the command line (:mod:`~studylib.platform.cli`, ``python -m studylib``).
"""
