"""Turn off book-wide figure numbers, which sphinx-jupyterbook-latex switches on for every builder: the chapters
name their figures by the papers' numbers, and a caption "Fig. 2" under a heading "Fig. 1" would mislead."""


def _no_numbers(app, config):
    config.numfig = False


def setup(app):
    app.connect("config-inited", _no_numbers, priority=900)  # after sphinx-jupyterbook-latex's handler (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
