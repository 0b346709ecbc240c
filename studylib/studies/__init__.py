"""One module per chapter: its grid over cached runs, the paper's published tables (transcribed into
``studylib/studies/paper_tables/``), our tables and its claims.

- :mod:`~studylib.studies.iiw_pretrained`, :mod:`~studylib.studies.iiw_finetuning`, :mod:`~studylib.studies.iiw_taylor`:
  the three IIW chapters (pre-trained vs random, fine-tuning epochs, Taylor error), on the fine-tuning grid they
  share (:mod:`~studylib.studies.iiw_grid`);
- :mod:`~studylib.studies.utilization`: layer utilization and re-initialisation;
- :mod:`~studylib.studies.esd`: the ESD audit;
- :mod:`~studylib.studies.model_information`: model information;
- :mod:`~studylib.studies.head_to_head`: every measure on one zoo (the head-to-head chapter).

Study modules sit outside the runs' cache keys: a change to a table or a verdict rule re-reads, never
retrains.
"""
