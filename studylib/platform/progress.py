"""Progress reporting for long work: on the terminal only, never in the book.

Used by every chapter that trains. On a terminal (stderr a tty) a loop shows a tqdm bar. Elsewhere (a
notebook, whose outputs become the book's pages) it is silent, unless ``STUDYLIB_PROGRESS=lines``, which
prints plain lines at most about every ``every`` seconds (for log files of long batch jobs). A grid prints
one summary line instead (:func:`report`, from :func:`studylib.platform.executor.run_grid`).
"""
from __future__ import annotations

import os
import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def _lines() -> bool:
    return os.environ.get("STUDYLIB_PROGRESS") == "lines"


def report(line: str, stream=None) -> None:
    """One line (a grid's summary) where :func:`progress` shows its bars: a terminal, or ``STUDYLIB_PROGRESS=lines``;
    never on a page."""
    stream = stream or sys.stderr
    if stream.isatty() or _lines():
        print(line, file=stream, flush=True)


def progress(items: Iterable[T], total: int | None = None, desc: str = "", every: float = 10.0,
             stream=None) -> Iterator[T]:
    stream = stream or sys.stderr
    total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)
    if stream.isatty():
        from tqdm.std import tqdm
        yield from tqdm(items, total=total, desc=desc, file=stream)
        return
    if not _lines():
        yield from items
        return
    start = last = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= every or (done == total and now - start >= every):
            of = f"/{total}" if total else ""
            print(f"{desc}: {done}{of} done, {now - start:.0f} s", file=stream, flush=True)
            last = now
