"""Run the engine's command line in a child process and follow its JSON progress lines (:mod:`medai.progress`).

One code path serves the Slicer widget and the console:

* GUI (non-blocking): ``run = SegmentationRun(...).start()``, then from a timer ``run.poll_events()`` and
  ``run.latest_progress`` until ``run.is_running()`` is false, then ``run.wait()`` for the :class:`RunResult`;
  the Cancel button calls ``run.cancel()``.
* Console (blocking): ``result = SegmentationRun(...).start().wait()`` or ``with SegmentationRun(...) as run:``.

Cancel kills the whole process tree (the child runs in its own process group / session). When a run is cancelled
or fails, the output files it created but did not report done (``case_done``) are removed, so no partial output is
left; a file that existed before the run started is never removed.

Plain Python: no slicer, no Qt.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Mapping, Optional, Sequence

from medai.errors import PathLike


@dataclass(frozen=True)
class ProgressState:
    """The latest ``progress`` event: ``overall`` fraction of the batch (0..1), the ``stage`` and the ``case``."""

    overall: float = 0.0
    stage: str = ""
    case: str = ""


@dataclass(frozen=True)
class RunResult:
    """What a finished run did.

    ``outputs`` are the paths of the ``case_done`` events; ``failures`` hold ``{"case", "error"}`` items from
    ``case_failed`` events (or the ``summary``); ``error`` is a one-line message (stderr's last line) when the run
    did not succeed, ``"cancelled"`` after :meth:`ProcessRun.cancel`, and empty on success.
    """

    returncode: Optional[int]
    cancelled: bool
    events: list[dict[str, Any]]
    outputs: list[str]
    failures: list[dict[str, str]]
    summary: Optional[dict[str, Any]]
    error: str
    log: list[str]

    @property
    def ok(self) -> bool:
        """True when the process exited with 0, was not cancelled and reported no failed case."""
        return self.returncode == 0 and not self.cancelled and not self.failures


class ProcessRun:
    """A command run in its own process group, its stdout parsed as JSON progress lines on background threads.

    ``outputs`` are the files or folders the run writes: they are guarded (see the module docstring).
    ``env`` and ``cwd`` are passed to :class:`subprocess.Popen` (``env=None`` inherits this process's).
    """

    #: seconds between the polite stop (SIGTERM) and the forced one (SIGKILL) when cancelling
    grace_seconds: float = 3.0

    def __init__(self, command: Sequence[PathLike], *, env: Optional[Mapping[str, str]] = None,
                 cwd: Optional[PathLike] = None, outputs: Iterable[PathLike] = ()) -> None:
        self.command = [os.fspath(part) for part in command]
        self.env = None if env is None else dict(env)
        self.cwd = None if cwd is None else os.fspath(cwd)
        self._guard = _OutputGuard([_absolute(p, self.cwd) for p in outputs])
        self._lock = threading.Lock()
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._events: list[dict[str, Any]] = []
        self._log: list[str] = []
        self._stderr: list[str] = []
        self._progress = ProgressState()
        self._proc: Optional[subprocess.Popen[str]] = None
        self._readers: list[threading.Thread] = []
        self._cancelled = False
        self._result: Optional[RunResult] = None

    # --- life cycle -------------------------------------------------------------------------------
    def start(self) -> "ProcessRun":
        """Start the process (once) and return ``self``."""
        if self._proc is not None:
            raise RuntimeError("this run has already been started")
        self._guard.snapshot()
        self._proc = subprocess.Popen(
            self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", errors="replace", bufsize=1, env=self.env, cwd=self.cwd,
            **_own_process_group())
        self._readers = [_reader(self._proc.stdout, self._on_stdout), _reader(self._proc.stderr, self._on_stderr)]
        return self

    @property
    def pid(self) -> Optional[int]:
        """The child's process id (also its process group id on POSIX); None before :meth:`start`."""
        return None if self._proc is None else self._proc.pid

    def is_running(self) -> bool:
        """True while the process runs or its output is still being read."""
        if self._proc is None:
            return False
        return self._proc.poll() is None or any(t.is_alive() for t in self._readers)

    def wait(self, timeout: Optional[float] = None) -> RunResult:
        """Block until the process ends and return its result; raises :class:`subprocess.TimeoutExpired`."""
        proc = self._require_started()
        proc.wait(timeout)
        return self._finish()

    def cancel(self) -> RunResult:
        """Kill the whole process tree, remove partial outputs and return the (cancelled) result."""
        proc = self._require_started()
        if self._result is None:
            self._cancelled = True
            self._kill_tree(proc)
        return self._finish()

    def __enter__(self) -> "ProcessRun":
        return self if self._proc is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self.cancel()
        else:
            self._finish()

    # --- progress (thread-safe) -------------------------------------------------------------------
    def poll_events(self) -> list[dict[str, Any]]:
        """The events received since the last call, oldest first; never blocks."""
        events = []
        while True:
            try:
                events.append(self._queue.get_nowait())
            except queue.Empty:
                return events

    @property
    def latest_progress(self) -> ProgressState:
        """The last ``progress`` event received."""
        with self._lock:
            return self._progress

    # --- internals --------------------------------------------------------------------------------
    def _require_started(self) -> subprocess.Popen[str]:
        if self._proc is None:
            raise RuntimeError("this run has not been started")
        return self._proc

    def _on_stdout(self, line: str) -> None:
        event = _parse_event(line)
        with self._lock:
            if event is None:
                self._log.append(line)
                return
            self._events.append(event)
            self._progress = _progress_of(event) or self._progress
        self._queue.put(event)

    def _on_stderr(self, line: str) -> None:
        with self._lock:
            self._log.append(line)
            if line.strip():
                self._stderr.append(line.strip())

    def _kill_tree(self, proc: subprocess.Popen[str]) -> None:
        if os.name == "nt":
            subprocess.run(["taskkill", "/T", "/F", "/PID", str(proc.pid)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
            return
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(self.grace_seconds)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(proc.pid, signal.SIGKILL)  # what is left: grandchildren, or a child ignoring SIGTERM

    def _finish(self) -> RunResult:
        """Reap the process, join the readers, clean partial outputs and build the result (once)."""
        if self._result is not None:
            return self._result
        proc = self._require_started()
        returncode = proc.wait()
        for reader in self._readers:
            reader.join(self.grace_seconds)
            if reader.is_alive() and os.name != "nt":  # an orphaned grandchild still holds the pipe
                _signal_group(proc.pid, signal.SIGKILL)
                reader.join()
        with self._lock:
            result = self._build_result(returncode)
        if not result.ok:
            self._guard.remove_new_files(keep=[_absolute(p, self.cwd) for p in result.outputs])
        self._result = result
        return result

    def _build_result(self, returncode: int) -> RunResult:
        events = list(self._events)
        outputs = [str(e["output"]) for e in events if e["event"] == "case_done" and e.get("output")]
        failures = [{"case": str(e.get("case", "")), "error": str(e.get("error", ""))}
                    for e in events if e["event"] == "case_failed"]
        summaries = [e for e in events if e["event"] == "summary"]
        summary = summaries[-1] if summaries else None
        if summary and not failures:
            failures = [dict(f) for f in summary.get("failures", [])]
        if self._cancelled:
            error = "cancelled"
        elif returncode == 0 and not failures:
            error = ""
        else:
            error = (self._stderr[-1] if self._stderr else failures[-1]["error"] if failures
                     else f"the process exited with code {returncode}")
        return RunResult(returncode, self._cancelled, events, outputs, failures, summary, error, list(self._log))


class SegmentationRun(ProcessRun):
    """``medai segment INPUT... -o OUTPUT --model MODEL --device DEVICE --progress json`` in a child process.

    ``python`` is the interpreter that runs the engine, ``sys.executable`` by default. Inside Slicer pass Slicer's
    Python launcher, ``shutil.which("PythonSlicer")``, with ``env=slicer.util.startupEnvironment()`` (the
    environment Slicer itself was started in; the launcher sets up its own). The folder holding the ``medai``
    package is put first on the child's ``PYTHONPATH`` so the child imports this same engine.
    """

    def __init__(self, inputs: Sequence[PathLike], output: PathLike, model: str = "brain-extraction",
                 device: str = "auto", *, channels: Sequence[PathLike] = (), options: Sequence[str] = (),
                 python: Optional[str] = None, env: Optional[Mapping[str, str]] = None,
                 cwd: Optional[PathLike] = None) -> None:
        super().__init__(segmentation_command(inputs, output, model, device, python, channels, options),
                         env=engine_environment(env), cwd=cwd, outputs=[output])


def segmentation_command(inputs: Sequence[PathLike], output: PathLike, model: str, device: str = "auto",
                         python: Optional[str] = None, channels: Sequence[PathLike] = (),
                         options: Sequence[str] = ()) -> list[str]:
    """The command line :class:`SegmentationRun` starts.

    ``channels``: the other volumes of the one case (``--channel``) for a model that takes several;
    ``options``: further ``medai segment`` options, as command-line words (e.g. ``["--tta"]``).
    """
    if not inputs:
        raise ValueError("at least one input is needed")
    if channels and len(inputs) != 1:
        raise ValueError("channels belong to one case: give one input with them")
    return [python or sys.executable, "-m", "medai.cli.main", "segment", *map(os.fspath, inputs),
            *(word for path in channels for word in ("--channel", os.fspath(path))),
            "-o", os.fspath(output), "--model", model, "--device", device, "--progress", "json", *options]


def engine_environment(env: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """``env`` (default: this process's) with this ``medai`` first on PYTHONPATH and unbuffered UTF-8 output."""
    out = dict(os.environ if env is None else env)
    package_parent = str(Path(__file__).resolve().parent.parent)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, out.get("PYTHONPATH", "")) if p)
    out["PYTHONUNBUFFERED"] = "1"
    out["PYTHONIOENCODING"] = "utf-8"
    return out


# --- helpers --------------------------------------------------------------------------------------------
class _OutputGuard:
    """Remembers which files and folders existed under ``paths`` so that only new ones are ever removed."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.before: set[Path] = set()

    def snapshot(self) -> None:
        self.before = {p for root in self.paths for p in _tree(root)}

    def remove_new_files(self, keep: list[Path]) -> None:
        kept = set(keep)
        for root in self.paths:
            new = [p for p in _tree(root) if p not in self.before and p not in kept]
            for path in sorted(new, key=lambda p: len(p.parts), reverse=True):  # files before their folders
                try:
                    path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
                except OSError:
                    pass  # a folder that still holds kept or older files stays


def _tree(root: Path) -> list[Path]:
    """``root`` and, for a folder, everything below it without following links (nothing when it does not exist)."""
    if not os.path.lexists(root):
        return []
    paths = [root]
    if root.is_dir() and not root.is_symlink():
        for folder, dirs, files in os.walk(root):
            paths += [Path(folder, name) for name in (*dirs, *files)]
    return paths


def _absolute(path: PathLike, cwd: Optional[str]) -> Path:
    """``path`` (relative to ``cwd``) as an absolute path with its folders' links resolved."""
    full = os.path.join(cwd or os.getcwd(), os.fspath(path))
    return Path(os.path.realpath(os.path.dirname(full)), os.path.basename(full))


def _parse_event(line: str) -> Optional[dict[str, Any]]:
    """The progress event of a stdout line, or None for any other text."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        event = json.loads(text)
    except ValueError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("event"), str) else None


def _progress_of(event: dict[str, Any]) -> Optional[ProgressState]:
    """The state a ``progress`` event reports (None for other events or malformed values)."""
    if event["event"] != "progress":
        return None
    try:
        return ProgressState(float(event.get("overall", 0.0)), str(event.get("stage", "")), str(event.get("case", "")))
    except (TypeError, ValueError):
        return None


def _reader(stream: Optional[IO[str]], handle: Callable[[str], None]) -> threading.Thread:
    """A daemon thread passing each line of ``stream`` (without its newline) to ``handle``."""
    def read() -> None:
        assert stream is not None
        with stream:
            for line in stream:
                handle(line.rstrip("\r\n"))

    thread = threading.Thread(target=read, name="medai-run-reader", daemon=True)
    thread.start()
    return thread


def _own_process_group() -> dict[str, Any]:
    """Popen arguments that put the child in a new process group, so that the whole tree can be killed."""
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW}
    return {"start_new_session": True}


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already
