"""Progress reporting: a bar on a terminal, JSON lines for programs (the Slicer runner), or nothing.

JSON lines go to stdout, one object per line, each with an ``event`` key:

* ``{"event": "start", "cases": N}``
* ``{"event": "progress", "case": NAME, "index": i, "cases": N, "stage": STAGE, "fraction": f, "overall": F}``
  -- ``fraction`` is progress within the case (0..1), ``overall`` across the batch (0..1);
* ``{"event": "case_done", "case": NAME, "output": PATH, "seconds": s, ...extra}``
* ``{"event": "case_failed", "case": NAME, "error": ONE_LINE}``
* ``{"event": "summary", "ok": n, "failed": m, "failures": [{"case": NAME, "error": ...}], "seconds": s}``
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Callable, Mapping, Optional, TextIO

#: ``progress(stage, fraction)``: what pipelines call as each of their stages begins.
ProgressCallback = Callable[[str, float], None]


class Progress:
    """Reports a batch's progress; ``mode`` is 'bar', 'json' or 'none'."""

    def __init__(self, mode: str = "bar", stream: Optional[TextIO] = None) -> None:
        if mode not in ("bar", "json", "none"):
            raise ValueError(f"unknown progress mode {mode!r}")
        self.mode = mode
        self.stream = stream or (sys.stdout if mode == "json" else sys.stderr)
        self.cases = 0
        self.index = 0
        self.case = ""
        self.failures: list[dict[str, str]] = []
        self.ok = 0
        self._t0 = time.perf_counter()
        self._case_t0 = self._t0

    # --- events -----------------------------------------------------------------------------------
    def start(self, cases: int) -> None:
        self.cases = cases
        self._emit({"event": "start", "cases": cases})

    def begin_case(self, index: int, case: str) -> None:
        self.index, self.case = index, case
        self._case_t0 = time.perf_counter()
        self.update("start", 0.0)

    def update(self, stage: str, fraction: float) -> None:
        """Progress within the current case: ``stage`` name and ``fraction`` in 0..1."""
        fraction = min(1.0, max(0.0, float(fraction)))
        overall = (self.index + fraction) / max(1, self.cases)
        self._emit({"event": "progress", "case": self.case, "index": self.index, "cases": self.cases,
                    "stage": stage, "fraction": round(fraction, 4), "overall": round(overall, 4)})

    def case_done(self, output: str, **extra: Any) -> None:
        self.ok += 1
        seconds = round(time.perf_counter() - self._case_t0, 3)
        self._emit({"event": "case_done", "case": self.case, "output": output, "seconds": seconds, **extra})

    def case_failed(self, error: str) -> None:
        self.failures.append({"case": self.case, "error": error})
        self._emit({"event": "case_failed", "case": self.case, "error": error})

    def summary(self) -> dict[str, Any]:
        result = {"event": "summary", "ok": self.ok, "failed": len(self.failures), "failures": self.failures,
                  "seconds": round(time.perf_counter() - self._t0, 3)}
        self._emit(result)
        return result

    # --- output -----------------------------------------------------------------------------------
    def _emit(self, event: dict[str, Any]) -> None:
        if self.mode == "json":
            self.stream.write(json.dumps(event) + "\n")
            self.stream.flush()
        elif self.mode == "bar":
            self._draw(event)

    def _draw(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        tty = self.stream.isatty()
        if kind == "progress":
            if not tty:
                return
            width = 30
            filled = int(round(width * event["overall"]))
            line = (f"\r[{'#' * filled}{'.' * (width - filled)}] {100 * event['overall']:5.1f}% "
                    f"{event['index'] + 1}/{event['cases']} {event['case'][:40]} {event['stage']:<14}")
            self.stream.write(line)
        elif kind == "case_done":
            clear = "\r\x1b[K" if tty else ""
            self.stream.write(f"{clear}done    {event['case']} -> {event['output']} ({event['seconds']:.1f} s)\n")
        elif kind == "case_failed":
            self.stream.write(("\r\x1b[K" if tty else "") + f"FAILED  {event['error']}\n")
        elif kind == "summary":
            text = f"{event['ok']} succeeded, {event['failed']} failed in {event['seconds']:.1f} s"
            if event["failures"]:
                text += "\nfailures:\n" + "\n".join(f"  {f['error']}" for f in event["failures"])
            self.stream.write(text + "\n")
        self.stream.flush()


class StageTimer:
    """Times a pipeline's consecutive stages and reports each start to an optional progress callback.

    ``starts`` maps a stage to the fraction of the case's work done when it begins (what ``progress`` is told);
    ``seconds`` collects the time spent in each stage, and ``total`` once the stage ``done`` begins.
    """

    def __init__(self, progress: Optional[ProgressCallback], starts: Mapping[str, float]) -> None:
        self.progress = progress
        self.starts = starts
        self.seconds: dict[str, float] = {}
        self._stage: Optional[str] = None
        self._t0 = self._start = time.perf_counter()

    def begin(self, stage: str, fraction: float = 0.0) -> None:
        """Close the running stage and start ``stage``."""
        now = time.perf_counter()
        if self._stage is not None:
            self.seconds[self._stage] = self.seconds.get(self._stage, 0.0) + now - self._start
        self._stage, self._start = stage, now
        if stage == "done":
            self.seconds["total"] = now - self._t0
        if self.progress:
            self.progress(stage, self.starts.get(stage, 0.5))
