"""Execute the study's notebooks with papermill and build the book.

Used by the CLI (``python -m studylib``) and the Makefile. Source notebooks live in ``notebooks/``
without outputs; executed copies go to ``book/notebooks/`` (build output, ignored by git), from
which jupyter-book renders the HTML with ``execute_notebooks: "off"``.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import config
from .params import PROFILES
from .profiles import NOTEBOOKS, resolve_values


def source_dir() -> Path:
    return config.repo_root() / "notebooks"


def executed_dir() -> Path:
    return config.repo_root() / "book" / "notebooks"


def notebook_names() -> list[str]:
    return sorted(NOTEBOOKS)


def run_notebook(name: str, profile: str = "standard", overrides: dict | None = None,
                 out_dir: Path | None = None, force: bool = False, progress_bar: bool | None = None) -> Path:
    """Validate the parameters, then execute ``notebooks/<name>.ipynb`` into ``out_dir`` (default
    ``book/notebooks/``). ``force`` recomputes cached runs. Returns the executed notebook's path."""
    import papermill
    name = Path(name).stem
    overrides = dict(overrides or {})
    resolve_values(name, profile, overrides)  # fails here, before a kernel starts, on a bad parameter
    out_dir = Path(out_dir or executed_dir())
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{name}.ipynb"
    env = {"STUDYLIB_EXECUTED_DIR": str(out_dir.resolve()), **({"STUDYLIB_FORCE": "1"} if force else {})}
    with _environment(env):
        papermill.execute_notebook(
            str(source_dir() / f"{name}.ipynb"), str(out), parameters={"PROFILE": profile, **overrides},
            kernel_name="python3", cwd=str(source_dir()), log_output=False,
            progress_bar=sys.stderr.isatty() if progress_bar is None else progress_bar)
    _hide_injected_parameters(out)
    return out


@contextlib.contextmanager
def _environment(values: dict):
    """Set environment variables for the kernel (``STUDYLIB_FORCE``; ``STUDYLIB_EXECUTED_DIR``, where the
    verdicts page finds the executed chapters), restoring the old values afterwards."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _hide_injected_parameters(path: Path) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell``, like the parameters cell: the page shows
    the resolved parameters printed by the next cell instead."""
    import nbformat
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, path)


def runs_created(start: str, end: str, runs: Path | None = None) -> int:
    """The number of cached runs created between ``start`` and ``end`` (papermill's ISO times, with their time
    zone): the runs an execution computed rather than read from the cache. The cache stamps ``created`` in the
    machine's local time."""
    from datetime import datetime
    if not start or not end:
        return 0
    local = [datetime.fromisoformat(t).astimezone().replace(tzinfo=None) for t in (start, end)]
    count = 0
    for meta in Path(runs or config.runs_dir()).glob("*/*/meta.json"):
        created = datetime.fromisoformat(json.loads(meta.read_text())["created"])
        count += local[0] <= created <= local[1]
    return count


def run_times(folder: Path | None = None, runs: Path | None = None) -> list[dict]:
    """Profile, seconds and runs computed (:func:`runs_created`) of each executed notebook, from papermill's
    metadata."""
    rows = []
    for nb in sorted(Path(folder or executed_dir()).glob("*.ipynb")):
        meta = json.loads(nb.read_text())["metadata"].get("papermill", {})
        rows.append({"notebook": nb.stem, "profile": meta.get("parameters", {}).get("PROFILE", "?"),
                     "seconds": round(meta.get("duration") or 0.0, 1), "finished": meta.get("end_time", ""),
                     "computed": runs_created(meta.get("start_time", ""), meta.get("end_time", ""), runs)})
    return rows


def write_run_times_page(folder: Path | None = None, root: Path | None = None) -> Path:
    """Write ``book/_generated/run_times.md``: the table of measured notebook run times the
    "rerun it" page includes."""
    rows = run_times(folder)
    lines = ["| notebook | profile | run time (s) | runs computed | finished (UTC) |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['notebook']} | {r['profile']} | {r['seconds']} | {r['computed']} | {r['finished'][:19]} |"
              for r in rows]
    total = sum(r["seconds"] for r in rows)
    lines.append(f"| **all** | | **{total:.1f}** | **{sum(r['computed'] for r in rows)}** | |")
    out = Path(root or config.repo_root()) / "book" / "_generated" / "run_times.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    (out.parent / "run_time_summary.md").write_text(run_time_summary(rows) + "\n")
    return out


def run_time_summary(rows: list[dict]) -> str:
    """The one statement of this build's run time that the "Rerun it" page and the README point to (from
    :func:`run_times`): notebooks, profiles, minutes, and the runs computed rather than read from the cache."""
    if not rows:
        return "No notebook has been executed for this build yet."
    profiles = sorted({r["profile"] for r in rows})
    computed = sum(r["computed"] for r in rows)
    return (f"This build executed its {len(rows)} notebooks ({', '.join(profiles)} profile"
            f"{'s' * (len(profiles) > 1)}) in {sum(r['seconds'] for r in rows) / 60:.1f} minutes; they computed "
            f"{computed} trained run{'s' * (computed != 1)} and read the others from the run cache.")


def write_parameters_page(root: Path | None = None) -> Path:
    """Write ``book/_generated/parameters.md``: every notebook's parameters and profile values."""
    lines = []
    for name, nb in NOTEBOOKS.items():
        if not nb.params:
            lines += [f"**{name}** ({nb.title}): no parameters but `PROFILE`.", ""]
            continue
        lines += [f"**{name}** ({nb.title})", "", "| parameter | accepts | " + " | ".join(PROFILES) + " | meaning |",
                  "| --- | --- | " + " | ".join("---" for _ in PROFILES) + " | --- |"]
        for pname, spec in nb.params.items():
            values = " | ".join(f"`{nb.profiles[p][pname]!r}`" for p in PROFILES)
            lines.append(f"| `{pname}` | {spec.accepts()} | {values} | {spec.help} |")
        lines.append("")
    out = Path(root or config.repo_root()) / "book" / "_generated" / "parameters.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    return out


def build_book(strict: bool = True, root: Path | None = None, student: bool = False) -> Path:
    """Build the HTML book from the executed notebooks with jupyter-book (strict: warnings fail). ``student``: the
    same book without the exercises' solutions (sphinx-exercise's ``hide_solutions``), under ``_build/student``."""
    import yaml
    root = Path(root or config.repo_root())
    missing = [n for n in notebook_names() if not (root / "book" / "notebooks" / f"{n}.ipynb").exists()]
    if missing:
        raise FileNotFoundError(f"executed notebooks missing: {', '.join(missing)}; run "
                                "`python -m studylib run-all` (or `make notebooks`) first")
    write_run_times_page(root / "book" / "notebooks", root)
    write_parameters_page(root)
    out = root / "_build" / "student" if student else root
    cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(root), "--path-output", str(out)]
    if student:
        settings = yaml.safe_load((root / "_config.yml").read_text())
        settings["sphinx"]["config"]["hide_solutions"] = True
        # a config outside the root: its relative paths made absolute
        settings["sphinx"]["local_extensions"] = {k: str(root / v) for k, v in settings["sphinx"]["local_extensions"].items()}
        settings["bibtex_bibfiles"] = [str(root / f) for f in settings["bibtex_bibfiles"]]
        out.mkdir(parents=True, exist_ok=True)
        (out / "_config.yml").write_text(yaml.safe_dump(settings, sort_keys=False))
        cmd += ["--config", str(out / "_config.yml")]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    start = time.time()
    subprocess.run(cmd, check=True)
    index = out / "_build" / "html" / "index.html"
    print(f"book built in {time.time() - start:.0f} s: {index}")
    return index


def glued_values(path: Path) -> dict:
    """The values an executed notebook glued (myst-nb ``glue``), by key: numbers as numbers, text as
    text, figures as their ``text/plain`` stand-in. Tests assert on these: the same values the prose shows."""
    import ast
    import nbformat
    values = {}
    for cell in nbformat.read(Path(path), as_version=4).cells:
        for out in cell.get("outputs", []):
            scrap = out.get("metadata", {}).get("scrapbook")
            if not scrap:
                continue
            data = {k[len(scrap["mime_prefix"]):]: v for k, v in out["data"].items()}
            text = data.get("text/markdown", data.get("text/plain"))
            try:
                values[scrap["name"]] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                values[scrap["name"]] = text
    return values
