"""Progress reporting for long work: on the terminal only, never in the book.

Used by every chapter that trains. Where progress goes:

- ``STUDYLIB_PROGRESS_FILE`` set (by :func:`studylib.platform.notebooks.run_notebook` for the kernel it starts):
  every event is appended to that file as one JSON line, and the command line (:class:`Renderer`, in the process
  that started the kernel) turns it into a live bar on its terminal, or plain lines off a terminal. A page gets
  nothing.
- Otherwise, on a terminal (stderr a tty) a loop shows a tqdm bar; with ``STUDYLIB_PROGRESS=lines`` plain lines at
  most about every ``every`` seconds (for log files of batch jobs); elsewhere (a notebook) nothing.
- Inside a grid's worker process (``STUDYLIB_IN_WORKER``) loops are silent: the grid reports for them.

A grid reports its progress with runs done / total, how many came from the cache and the time left, and one
summary line when it is done (:func:`report`, from :func:`studylib.platform.executor.run_grid`).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
CHANNEL = "STUDYLIB_PROGRESS_FILE"
IN_WORKER = "STUDYLIB_IN_WORKER"


def _lines() -> bool:
    return os.environ.get("STUDYLIB_PROGRESS") == "lines"


def _channel() -> Path | None:
    path = os.environ.get(CHANNEL)
    return Path(path) if path else None


def _send(event: dict) -> bool:
    """Append ``event`` to the command line's channel; False when there is none."""
    path = _channel()
    if path is None:
        return False
    with open(path, "a") as f:  # one short write per line: appends from several processes stay whole
        f.write(json.dumps(event) + "\n")
    return True


def report(line: str, stream=None) -> None:
    """One line (a grid's summary) where :func:`progress` shows its bars: the command line's terminal, a terminal,
    or ``STUDYLIB_PROGRESS=lines``; never on a page."""
    if _send({"line": line}):
        return
    stream = stream or sys.stderr
    if stream.isatty() or _lines():
        print(line, file=stream, flush=True)


def notice(line: str) -> None:
    """Something the person running the study should know (a corrupt cache entry recomputed, a wait for another
    process): on the command line's terminal when there is one, else on stderr."""
    if not _send({"line": line}):
        print(line, file=sys.stderr, flush=True)


def _shown_here(stream) -> bool:
    return stream.isatty() or _lines()


def progress(items: Iterable[T], total: int | None = None, desc: str = "", every: float = 10.0,
             stream=None) -> Iterator[T]:
    """Iterate over ``items``, showing progress where :mod:`this module <studylib.platform.progress>` says."""
    stream = stream or sys.stderr
    total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)
    if os.environ.get(IN_WORKER) or (_channel() is None and not _shown_here(stream)):
        yield from items
        return
    tracker = Tracker(desc, total, stream=stream, every=every)
    for item in items:
        yield item
        tracker.step()


class Tracker:
    """Progress of one loop (a grid's runs, a training's epochs): sent to the command line's channel when there is
    one, else shown on ``stream`` when it is a terminal or ``STUDYLIB_PROGRESS=lines``, else nowhere. Started, then
    at most every half second and at the end, with how many items came from the cache (:meth:`step`)."""

    def __init__(self, desc: str, total: int | None, stream=None, every: float = 10.0):
        self.desc, self.total = desc, total
        self.id = f"{os.getpid()}-{id(self)}-{time.monotonic_ns()}"
        self.done = self.cached = 0
        self.start = self.last = time.monotonic()
        stream = stream or sys.stderr
        self.local = (None if _channel() is not None or os.environ.get(IN_WORKER) or not _shown_here(stream)
                      else Renderer(None, stream, every))
        self._send()

    def step(self, cached: bool = False) -> None:
        self.done += 1
        self.cached += bool(cached)
        now = time.monotonic()
        if now - self.last >= 0.5 or self.done == self.total:
            self.last = now
            self._send()

    def _send(self) -> None:
        event = {"bar": self.id, "desc": self.desc, "done": self.done, "total": self.total, "cached": self.cached,
                 "seconds": round(time.monotonic() - self.start, 2)}
        if self.local is not None:
            self.local.show(event)
        else:
            _send(event)


def progress_summary(event: dict) -> str:
    """One plain line of a progress event: ``"desc: 5/20, 3 from cache, 40 s, about 2 min left"``."""
    done, total, seconds = event["done"], event["total"], event["seconds"]
    parts = [f"{event['desc']}: {done}" + (f"/{total}" if total else "")]
    if event.get("cached"):
        parts.append(f"{event['cached']} from cache")
    parts.append(_duration(seconds))
    computed = done - event.get("cached", 0)
    if total and 0 < done < total and computed > 0:
        parts.append(f"about {_duration(seconds / computed * (total - done))} left")
    return ", ".join(parts)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


class Renderer:
    """The command line's side of the channel: follows the file a kernel writes its events to and shows them on
    ``stream``: a tqdm bar per loop on a terminal, else a plain line per loop at most every ``every`` seconds."""

    def __init__(self, path: Path | None, stream=None, every: float = 10.0):
        self.path, self.stream, self.every = path and Path(path), stream or sys.stderr, every
        self.bars: dict = {}
        self.printed: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def __enter__(self) -> Renderer:
        self.path.touch()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for bar in self.bars.values():
            bar.close()

    def _follow(self) -> None:
        with open(self.path) as f:
            buffer = ""
            while True:
                chunk = f.readline()
                buffer += chunk
                if buffer.endswith("\n"):
                    try:
                        self.show(json.loads(buffer))
                    except (ValueError, KeyError, TypeError):
                        pass  # a line cut short by a writer that was killed: skipped, the next ones still show
                    buffer = ""
                elif self._stop.is_set():
                    return
                elif not chunk:
                    time.sleep(0.2)

    def show(self, event: dict) -> None:
        if "line" in event:
            if self.stream.isatty():
                from tqdm.std import tqdm
                tqdm.write(event["line"], file=self.stream)
            else:
                print(event["line"], file=self.stream, flush=True)
            return
        finished = event["total"] is not None and event["done"] >= event["total"]
        if self.stream.isatty():
            self._bar(event, finished)
            return
        now = time.monotonic()
        last = self.printed.setdefault(event["bar"], now)
        due = now - last >= self.every if not finished else event["seconds"] >= self.every
        if event["done"] and (due or self.every == 0):
            print(progress_summary(event), file=self.stream, flush=True)
            self.printed[event["bar"]] = now

    def _bar(self, event: dict, finished: bool) -> None:
        from tqdm.std import tqdm
        bar = self.bars.get(event["bar"])
        if bar is None:
            bar = self.bars[event["bar"]] = tqdm(total=event["total"], desc=event["desc"], file=self.stream,
                                                 leave=False)
        bar.n = event["done"]
        if event["cached"]:
            bar.set_postfix_str(f"{event['cached']} from cache", refresh=False)
        bar.refresh()
        if finished:
            bar.close()
            del self.bars[event["bar"]]
