"""Progress reporting for long work: a tqdm bar on a terminal, plain text lines elsewhere.

Used by every chapter that trains. In notebooks (no terminal) widgets would render blank in the
book, so progress is printed as plain lines, at most about every ``every`` seconds, and the last one
when the work took that long (a loop done within ``every`` seconds prints nothing).
"""
from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], total: int | None = None, desc: str = "", every: float = 10.0,
             stream=None) -> Iterator[T]:
    stream = stream or sys.stderr
    total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)
    if stream.isatty():
        from tqdm.std import tqdm
        yield from tqdm(items, total=total, desc=desc, file=stream)
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
