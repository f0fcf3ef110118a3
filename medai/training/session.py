"""Where a run keeps its state: a hidden work folder beside the package, and which checkpoint a resume uses.

``OUTPUT`` appears only when the finished package is published (see :mod:`medai.training.package`). Until
then the run writes its log and checkpoints into ``.<OUTPUT name>.training/`` beside it; that folder stays
after a crash or Ctrl-C so ``--resume`` can continue, and is removed once the package is published (the
package carries the last checkpoint, so ``--resume --epochs MORE`` can extend a finished run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from medai.errors import MedAIError
from medai.training.loop import LAST, LOG, TrainingLog, load_checkpoint


@dataclass
class Session:
    output: Path
    work: Path
    log: TrainingLog
    resume: Optional[dict[str, Any]]
    resume_path: Optional[Path]


def work_folder(output: Path) -> Path:
    """The hidden folder beside ``output`` holding an unfinished run's log and checkpoints."""
    return output.parent / f".{output.name}.training"


def check_output(output: Path, resume: bool, overwrite: bool) -> None:
    """Refuse an output that cannot be written, before any work is done."""
    if not output.parent.is_dir():
        raise MedAIError("the folder to write the model package into does not exist", output.parent)
    if output.exists() and not output.is_dir():
        raise MedAIError("is a file; the model package is a folder", output)
    if output.is_dir() and any(output.iterdir()) and not (resume or overwrite):
        raise MedAIError("already exists; use --resume to continue its training or --overwrite to replace it", output)


def open_session(output: Path, resume: bool, config: dict[str, Any], compatible_keys: tuple[str, ...]) -> Session:
    """Create (or reopen, for ``resume``) the work folder and log; load the checkpoint to resume from.

    A resume takes the work folder's checkpoint (an interrupted run) or else the published package's one, and
    refuses one whose ``compatible_keys`` of the config differ (another network, task, data...).
    """
    work = work_folder(output)
    checkpoint, path = None, None
    if resume:
        for candidate in (work / LAST, output / LAST):
            if candidate.is_file():
                path = candidate
                break
        if path is None:
            raise MedAIError(f"has no checkpoint to resume from (looked for {LAST} here and in {work.name})", output)
        checkpoint = load_checkpoint(path)
        saved = checkpoint.get("config", {})
        for key in compatible_keys:
            if saved.get(key) != config.get(key):
                raise MedAIError(f"cannot resume: the checkpoint was trained with {key} = {saved.get(key)!r}, "
                                 f"this run asks for {config.get(key)!r}", path)
    work.mkdir(exist_ok=True)
    if path is not None and path.parent == output and (output / LOG).is_file() and not (work / LOG).is_file():
        (work / LOG).write_bytes((output / LOG).read_bytes())  # keep the finished run's log lines
    log = TrainingLog(work / LOG, append=resume)
    return Session(output, work, log, checkpoint, path)
