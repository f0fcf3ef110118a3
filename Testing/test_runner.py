"""medai.runner with real child processes: progress events, results, failures, cancel of the whole tree, outputs."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest

from medai.runner import ProcessRun, SegmentationRun, engine_environment, segmentation_command

# A batch of two cases reported with medai.progress, as the engine's CLI does with --progress json.
BATCH = """
    import sys
    from medai.progress import Progress
    out = sys.argv[1]
    progress = Progress("json")
    progress.start(2)
    for index, case in enumerate(["first", "second"]):
        progress.begin_case(index, case)
        for stage, fraction in (("load", 0.2), ("infer", 0.6), ("write", 0.9)):
            progress.update(stage, fraction)
        path = f"{out}/{case}.txt"
        with open(path, "w") as f:
            f.write(case)
        progress.case_done(path)
    print("not a progress line")
    progress.summary()
"""

# Writes a partial output, starts a grandchild that ignores SIGTERM, then works "forever".
LONG = """
    import json, subprocess, sys, time
    out = sys.argv[1]
    with open(out, "w") as f:
        f.write("partial")
    grandchild = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 60"])
    print(json.dumps({"event": "grandchild", "pid": grandchild.pid}), flush=True)
    while True:
        time.sleep(0.05)
"""


def script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "child.py"
    path.write_text(textwrap.dedent(body))
    return path


def alive(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie counts as dead), read from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for_event(run: ProcessRun, name: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in run.poll_events():
            if event["event"] == name:
                return event
        time.sleep(0.02)
    raise AssertionError(f"no {name!r} event within {timeout} s")


def start_long_run(tmp_path: Path, output: Path) -> tuple[ProcessRun, int]:
    run = ProcessRun([sys.executable, script(tmp_path, LONG), output], outputs=[output])
    run.grace_seconds = 0.5
    run.start()
    return run, wait_for_event(run, "grandchild")["pid"]


def test_progress_events_arrive_in_order_and_wait_returns_the_outputs(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    run = ProcessRun([sys.executable, script(tmp_path, BATCH), out], env=engine_environment(), outputs=[out])
    polled = []
    with run:
        while run.is_running():
            polled += run.poll_events()
            time.sleep(0.01)
        polled += run.poll_events()
        result = run.wait()

    assert result.ok and result.returncode == 0 and result.error == ""
    assert [e["event"] for e in polled] == [e["event"] for e in result.events]
    kinds = [e["event"] for e in result.events]
    assert kinds[0] == "start" and kinds[-1] == "summary"
    assert kinds.count("case_done") == 2 and kinds.count("progress") == 8
    overall = [e["overall"] for e in result.events if e["event"] == "progress"]
    assert overall == sorted(overall) and 0.0 <= overall[0] and overall[-1] <= 1.0
    assert result.outputs == [str(out / "first.txt"), str(out / "second.txt")]
    assert all(Path(p).read_text() in ("first", "second") for p in result.outputs)
    assert result.summary["ok"] == 2 and result.failures == []
    assert "not a progress line" in result.log
    assert run.latest_progress.case == "second" and run.latest_progress.stage == "write"
    assert run.latest_progress.overall == pytest.approx(0.95)


def test_a_failing_command_gives_its_one_line_error(tmp_path):
    failing = """
        import json, sys
        print(json.dumps({"event": "start", "cases": 1}))
        print(json.dumps({"event": "case_failed", "case": "scan", "error": "scan.nii: not a volume"}))
        print("Traceback (most recent call last):", file=sys.stderr)
        print("medai: error: scan.nii: not a volume", file=sys.stderr)
        sys.exit(1)
    """
    result = ProcessRun([sys.executable, script(tmp_path, failing)]).start().wait(timeout=20)
    assert not result.ok and result.returncode == 1 and not result.cancelled
    assert result.error == "medai: error: scan.nii: not a volume"
    assert result.failures == [{"case": "scan", "error": "scan.nii: not a volume"}]
    assert result.outputs == []


def test_cancel_kills_child_and_grandchild_and_removes_the_partial_output(tmp_path):
    output = tmp_path / "result.seg.nrrd"
    run, grandchild = start_long_run(tmp_path, output)
    child = run.pid
    assert output.exists() and alive(child) and alive(grandchild)

    t0 = time.monotonic()
    result = run.cancel()
    assert time.monotonic() - t0 < 5
    assert result.cancelled and not result.ok and result.error == "cancelled"
    deadline = time.monotonic() + 3  # an orphaned zombie is reaped by init: allow a moment
    while (alive(child) or alive(grandchild)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child) and not alive(grandchild)
    assert not output.exists()
    assert not run.is_running()


def test_cancel_never_deletes_a_file_that_existed_before_the_run(tmp_path):
    output = tmp_path / "result.seg.nrrd"
    output.write_text("earlier result")
    run, _ = start_long_run(tmp_path, output)
    run.cancel()
    assert output.exists()


def test_a_failed_batch_keeps_done_and_older_files_and_removes_partial_ones(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "older.txt").write_text("from another day")
    batch = """
        import os, sys
        from medai.progress import Progress
        out = sys.argv[1]
        progress = Progress("json")
        progress.start(2)
        progress.begin_case(0, "one")
        open(os.path.join(out, "one.txt"), "w").write("done")
        progress.case_done(os.path.join(out, "one.txt"))
        progress.begin_case(1, "two")
        os.makedirs(os.path.join(out, "two"))
        open(os.path.join(out, "two", "two.part"), "w").write("half")
        progress.case_failed("two: out of memory")
        progress.summary()
        sys.exit(1)
    """
    result = ProcessRun([sys.executable, script(tmp_path, batch), out], env=engine_environment(),
                        outputs=[out]).start().wait(timeout=20)
    assert not result.ok and result.failures == [{"case": "two", "error": "two: out of memory"}]
    assert result.error == "two: out of memory"  # nothing on stderr: the failed case's message
    assert sorted(p.name for p in out.iterdir()) == ["older.txt", "one.txt"]


def test_leaving_the_context_cancels_a_running_process(tmp_path):
    output = tmp_path / "out.nrrd"
    with ProcessRun([sys.executable, script(tmp_path, LONG), output], outputs=[output]) as run:
        run.grace_seconds = 0.5
        grandchild = wait_for_event(run, "grandchild")["pid"]
    deadline = time.monotonic() + 3
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild) and not output.exists()


def test_segmentation_command_line():
    command = segmentation_command(["a.nii.gz", Path("b.nrrd")], "out", "brain-extraction", "cpu", python="py")
    assert command == ["py", "-m", "medai.cli.main", "segment", "a.nii.gz", "b.nrrd", "-o", "out",
                       "--model", "brain-extraction", "--device", "cpu", "--progress", "json"]
    assert segmentation_command(["a"], "o", "m")[0] == sys.executable
    with pytest.raises(ValueError):
        segmentation_command([], "o", "m")


def test_a_segmentation_run_of_a_missing_file_fails_with_one_line_and_no_output(tmp_path):
    output = tmp_path / "brain.seg.nrrd"
    result = SegmentationRun([tmp_path / "missing.nii.gz"], output, device="cpu", cwd=tmp_path).start().wait(60)
    assert not result.ok and result.returncode != 0
    assert result.error.startswith("medai") and "\n" not in result.error
    assert not output.exists()
