"""Execute the study's notebooks with papermill and build the book.

Used by the CLI (``python -m studylib``) and the Makefile. Source notebooks live in ``notebooks/``
without outputs; executed copies go to ``book/notebooks/`` (build output, ignored by git), from
which jupyter-book renders the HTML with ``execute_notebooks: "off"``.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import config
from .params import PROFILES
from .profiles import NOTEBOOKS, resolve_values
from .cache import FORCE_SINCE
from .progress import CHANNEL, Renderer


def source_dir() -> Path:
    return config.repo_root() / "notebooks"


def executed_dir() -> Path:
    return config.repo_root() / "book" / "notebooks"


def replication_dir() -> Path:
    """Where the replication build (``run-all --replication``) puts its chapters; the verdicts page reads them."""
    return config.repo_root() / "book" / "replication"


#: the replication build runs each chapter with its profile's SEED plus this: seeds disjoint from the book's own
#: SEED, SEED + 1, ... (no chapter draws more than 100 seeds)
REPLICATION_SEED_SHIFT = 1000


def replication_overrides(name: str, profile: str) -> dict:
    """The parameters a chapter's replication run changes: ``{"SEED": <the profile's SEED> + 1000}``."""
    return {"SEED": resolve_values(name, profile, {})["SEED"] + REPLICATION_SEED_SHIFT}


def notebook_names() -> list[str]:
    return sorted(NOTEBOOKS)


class Stopped(KeyboardInterrupt):
    """An execution stopped by Ctrl-C or SIGTERM: the kernel and its workers have been ended."""


def run_notebook(name: str, profile: str = "standard", overrides: dict | None = None,
                 out_dir: Path | None = None, force: bool = False, progress_bar: bool | None = None) -> Path:
    """Validate the parameters, then execute ``notebooks/<name>.ipynb`` into ``out_dir`` (default
    ``book/notebooks/``). ``force`` recomputes cached runs. Returns the executed notebook's path.

    The notebook executes into a temporary file that replaces ``out_dir/<name>.ipynb`` only when every cell ran: a
    failed or stopped run leaves the old chapter as it was, and its error names the partial output. The executed
    notebook records its profile and the parameters that differ from it (``metadata.studylib``, read by
    :func:`provenance`). Progress of the kernel's grids is shown on this process's stderr (``progress_bar``; the
    command line always shows it: a bar on a terminal, plain lines elsewhere; by default only when stderr is a
    terminal or ``STUDYLIB_PROGRESS=lines``), never on the page. Ctrl-C or SIGTERM ends the
    kernel and every process it started within seconds and raises :class:`Stopped`.
    """
    import papermill
    name = Path(name).stem
    overrides = dict(overrides or {})
    values = resolve_values(name, profile, overrides)  # fails here, before a kernel starts, on a bad parameter
    out_dir = Path(out_dir or executed_dir())
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{name}.ipynb"
    scratch = Path(tempfile.mkdtemp(prefix=f"studylib-{name}-"))
    partial, channel = scratch / f"{name}.ipynb", scratch / "progress.jsonl"
    env = {"STUDYLIB_EXECUTED_DIR": str(out_dir.resolve()), CHANNEL: str(channel),
           **({"STUDYLIB_FORCE": "1", FORCE_SINCE: os.environ.get(FORCE_SINCE) or str(time.time())} if force else {})}
    show = sys.stderr.isatty() or os.environ.get("STUDYLIB_PROGRESS") == "lines" if progress_bar is None else progress_bar
    try:
        with _environment(env), (Renderer(channel) if show else _quiet(channel)), _stopping_on_signals(name) as stop:
            try:
                papermill.execute_notebook(
                    str(source_dir() / f"{name}.ipynb"), str(partial), parameters={"PROFILE": profile, **overrides},
                    kernel_name="python3", cwd=str(source_dir()), log_output=False, progress_bar=False,
                    kernel_manager_class=_ipc_kernel_manager(scratch / "kernel"))
            except BaseException as err:
                if stop.signal:
                    raise Stopped(f"{name}: stopped ({stop.signal}); {stop.ended} kernel and worker process"
                                  f"{'es' * (stop.ended != 1)} ended; finished runs stay in the run cache; {out} "
                                  f"{'is unchanged' if out.exists() else 'was not written'}; partial output: "
                                  f"{partial}") from None
                raise ExecutionFailed(f"{name} failed; {out} {'is unchanged' if out.exists() else 'was not written'}; "
                                      f"partial output: {partial}\n{err}") from err
    finally:
        channel.unlink(missing_ok=True)
    _finish(partial, name, profile, values)
    shutil.move(str(partial), out_dir / f".{name}.ipynb.new")
    os.replace(out_dir / f".{name}.ipynb.new", out)
    shutil.rmtree(scratch, ignore_errors=True)
    return out


def _ipc_kernel_manager(prefix: Path) -> type:
    """A kernel manager that talks to its kernel over local sockets (files starting with ``prefix``), not TCP: no
    port is opened and the kernel has no unencrypted-TCP warning to print."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import Unicode

    class IPCKernelManager(AsyncKernelManager):
        transport = Unicode("ipc")
        ip = Unicode(str(prefix))

    return IPCKernelManager


class ExecutionFailed(RuntimeError):
    """A notebook raised: the executed chapter was left as it was."""


@contextlib.contextmanager
def _quiet(channel: Path):
    channel.touch()
    yield


class _Stop:
    signal: str | None = None
    ended: int = 0


@contextlib.contextmanager
def _stopping_on_signals(name: str):
    """On SIGINT or SIGTERM, end every process this one started (the kernel, which runs in a session of its own
    and never sees the terminal's Ctrl-C, and the grid workers it started), then interrupt the execution."""
    import signal
    import threading
    import psutil
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    already = {p.pid for p in psutil.Process().children(recursive=True)}  # the caller's own, left alone

    def handler(signum, frame):
        if stop.signal is None:
            stop.signal = signal.Signals(signum).name
            for s in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the clean-up short
                signal.signal(s, signal.SIG_IGN)
            stop.ended = end_children(spare=already)
        raise Stopped(stop.signal)

    before = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in before.items():
            signal.signal(s, h)


def end_children(grace: float = 3.0, spare: set[int] = frozenset()) -> int:
    """Terminate every descendant process of this one but those in ``spare`` (SIGTERM, then SIGKILL after ``grace``
    seconds); returns how many there were."""
    import psutil
    children = [p for p in psutil.Process().children(recursive=True) if p.pid not in spare]
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=grace)
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(alive, timeout=grace)
    return len(children)


@contextlib.contextmanager
def _environment(values: dict):
    """Set environment variables for the kernel (``STUDYLIB_FORCE``; ``STUDYLIB_EXECUTED_DIR``, where the
    verdicts page finds the executed chapters; the progress channel), restoring the old values afterwards."""
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


def _finish(path: Path, name: str, profile: str, values: dict) -> None:
    """Record the run's profile and the parameters that differ from it; tag papermill's injected-parameters
    cell ``remove-cell`` like the parameters cell (the page shows the resolved parameters the next cell prints)."""
    import nbformat
    nb = nbformat.read(path, as_version=4)
    defaults = resolve_values(name, profile, {})
    nb.metadata["studylib"] = {"notebook": name, "profile": profile, "completed": True,
                               "overrides": {k: v for k, v in values.items() if v != defaults[k]}}
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, path)


#: parameters that cannot move a number (every run trains on one thread, whatever the number of workers)
NUMBER_NEUTRAL = {"WORKERS"}


def provenance(folder: Path | None = None, profile: str = "standard", replication: bool = False) -> list[dict]:
    """How each chapter in ``folder`` (default ``book/notebooks``) was executed, against a build on ``profile`` with
    its default parameters (``replication``: with :func:`replication_overrides`): one row per chapter (the verdicts page excepted) with its ``state``, ``"ok"``,
    ``"missing"``, ``"failed"`` (an error or an unfinished execution), ``"other profile"`` or ``"other
    parameters"`` (those of :data:`NUMBER_NEUTRAL` aside), and ``detail`` in words. Reads what :func:`run_notebook` records, or papermill's metadata
    for a notebook executed with papermill directly. Used by the verdicts page and the book build."""
    folder = Path(folder or executed_dir())
    rows = []
    for name in notebook_names():
        if name == "99_verdicts":
            continue
        path = folder / f"{name}.ipynb"
        row = {"notebook": name, "title": NOTEBOOKS[name].title, "state": "ok", "detail": ""}
        rows.append(row)
        if not path.exists():
            row.update(state="missing", detail="is missing")
            continue
        meta = json.loads(path.read_text()).get("metadata", {})
        mine, papermill_meta = meta.get("studylib"), meta.get("papermill", {})
        if papermill_meta.get("exception") or (mine is not None and not mine.get("completed")):
            row.update(state="failed", detail="stopped with an error")
            continue
        given = papermill_meta.get("parameters", {})
        ran_on = (mine or {}).get("profile") or given.get("PROFILE") or "standard"
        if mine is not None:
            overrides = mine.get("overrides", {})
        else:
            try:
                values = resolve_values(name, ran_on, {k: v for k, v in given.items() if k != "PROFILE"})
                defaults = resolve_values(name, ran_on, {})
                overrides = {k: v for k, v in values.items() if v != defaults[k]}
            except ValueError as err:
                row.update(state="failed", detail=f"ran with parameters that are not valid now ({err})")
                continue
        if replication:  # the replication's own SEED is expected; the book's SEED is an odd parameter here
            expected = replication_overrides(name, ran_on)
            ran_with = {k: resolve_values(name, ran_on, {})[k] for k in expected} | overrides
            overrides = {k: v for k, v in ran_with.items() if k not in expected or v != expected[k]}
        overrides = {k: v for k, v in overrides.items() if k not in NUMBER_NEUTRAL}
        if ran_on != profile:
            row.update(state="other profile", detail=f"ran on the {ran_on} profile")
        if overrides:
            shown = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
            row.update(state=row["state"] if ran_on != profile else "other parameters",
                       detail=(row["detail"] + " and" if row["detail"] else "ran") + f" with {shown}")
    return rows


def provenance_statement(rows: list[dict], profile: str = "standard", replication: bool = False) -> str:
    """One sentence on the chapters behind a build (:func:`provenance`): that all ran to completion on ``profile``
    with its defaults, or which did not and how; ``replication``: of a replication build, whose chapters that ran
    otherwise are left out of the check."""
    odd = [r for r in rows if r["state"] != "ok"]
    if replication:
        done = [int(r["notebook"][:2]) for r in rows if r["state"] == "ok"]
        shown = ", ".join(map(str, done[:-1])) + (" and " if len(done) > 1 else "") + str(done[-1]) if done else "none"
        listed = "; ".join(f"chapter {int(r['notebook'][:2])} {r['detail']}" for r in odd if r["state"] != "missing")
        return (f"The replication build (the chapters again on the {profile} profile with SEED + "
                f"{REPLICATION_SEED_SHIFT}) holds chapter{'s' * (len(done) != 1)} {shown}"
                + (f"; left out, as run otherwise: {listed}." if listed else "."))
    if not odd:
        return (f"All {len(rows)} chapters behind these numbers ran to completion on the {profile} profile with its "
                "default parameters.")
    listed = "; ".join(f"chapter {int(r['notebook'][:2])} ({r['title']}) {r['detail']}" for r in odd)
    return (f"These numbers are not those of the {profile} book: {listed}. Verdicts and counts cover the executed "
            "chapters only.")


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
    profile = _book_profile(folder)
    statement = provenance_statement(provenance(folder, profile), profile)
    (out.parent / "run_time_summary.md").write_text(run_time_summary(rows) + " " + statement + "\n")
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
        if nb.rules:
            lines += ["Checked together: " + "; ".join(rule.asks for rule in nb.rules) + ".", ""]
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
    profile = _book_profile(root / "book" / "notebooks")
    print(provenance_statement(provenance(root / "book" / "notebooks", profile), profile))
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


def _book_profile(folder: Path | None) -> str:
    """The profile of a build: the one its verdicts page ran on (``standard`` when it has not run)."""
    path = Path(folder or executed_dir()) / "99_verdicts.ipynb"
    if not path.exists():
        return "standard"
    meta = json.loads(path.read_text()).get("metadata", {})
    return (meta.get("studylib") or {}).get("profile") or meta.get("papermill", {}).get("parameters", {}).get(
        "PROFILE", "standard")


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
