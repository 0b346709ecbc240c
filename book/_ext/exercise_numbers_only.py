"""Number exercises, and nothing else: sphinx-exercise needs ``numfig`` (which sphinx-jupyterbook-latex switches on
for every builder anyway), but the chapters name their figures by the papers' numbers, and a caption "Fig. 2" under
a heading "Fig. 1" would mislead. After Sphinx assigns the numbers, those of figures, tables and code blocks are
dropped."""

UNNUMBERED = ("figure", "table", "code-block")


def _drop_figure_numbers(app, env):
    for numbers in env.toc_fignumbers.values():
        for figtype in UNNUMBERED:
            numbers.pop(figtype, None)
    return []


def setup(app):
    app.connect("env-get-updated", _drop_figure_numbers, priority=900)  # after Sphinx's own numbering (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
