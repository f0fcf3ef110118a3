"""The epoch loop shared by both tasks: seeding, validation every epoch, best and last checkpoints, resume, log.

Reproducibility: every random draw of epoch ``e`` (patch positions, augmentation, shuffling, dropout) comes from
generators seeded with ``(seed, e)`` at the start of that epoch, so a run resumed after epoch ``e`` continues
exactly as an uninterrupted one (on CPU, with the same thread count). The learning rate is constant, so
extending a finished run with more epochs is the same as having asked for them at first.

Checkpoints are ``torch.save`` of plain state dicts and numbers, read back with ``weights_only=True``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from medai.errors import MedAIError

LAST = "checkpoint.pt"
BEST = "best.pt"
LOG = "train.log"


def epoch_seed(seed: int, epoch: int) -> int:
    """A 31-bit seed for epoch ``epoch`` of a run seeded with ``seed``."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0] & 0x7FFFFFFF)


def seed_torch(seed: int) -> None:
    """Seed torch's global generator (weight initialisation, dropout)."""
    import torch

    torch.manual_seed(seed)


@dataclass
class EpochResult:
    """What one epoch reports: mean training loss, the validation metric (higher is better) and extras."""

    loss: float
    metric: float
    tiebreak: float = 0.0  # among equal metrics, the higher tiebreak wins (e.g. minus the validation loss)
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class FitResult:
    best_state: dict
    best_metric: float
    best_epoch: int
    history: list[dict[str, Any]]
    resumed_from: Optional[int]


class TrainingLog:
    """A plain-text log a person can read: one line per event, flushed as written."""

    def __init__(self, path: Path, append: bool) -> None:
        self.path = path
        self.handle = open(path, "a" if append else "w", encoding="utf-8")

    def write(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        for line in text.splitlines():
            self.handle.write(f"{stamp}  {line}\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by :func:`fit` (no pickled code runs: weights_only)."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable checkpoint is the user's file problem
        raise MedAIError(f"is not a readable training checkpoint ({str(error).splitlines()[0]})", path) from None


def fit(model, optimizer, run_epoch: Callable[[int, Callable[..., None]], EpochResult], epochs: int,
        work: Path, seed: int, log: TrainingLog, progress, resume: Optional[dict[str, Any]] = None,
        metric_name: str = "metric", saved: Optional[dict[str, Any]] = None) -> FitResult:
    """Train ``model`` for epochs ``1..epochs`` (continuing after ``resume``'s epoch), checkpointing into ``work``.

    ``run_epoch(epoch, report)`` trains one epoch then validates, calling ``report(fraction[, stage])`` as it goes
    (stage 'train' unless given, e.g. 'validate').
    ``progress`` is a :class:`medai.progress.Progress`; each epoch is one of its cases. ``saved`` (plain
    JSON-like data, e.g. the run's config) is stored in every checkpoint.
    """
    import copy

    import torch

    from medai.io.atomic import write_atomically

    start, history = 0, []
    best = {"metric": -np.inf, "tiebreak": -np.inf, "epoch": 0, "state": copy.deepcopy(model.state_dict())}
    resumed_from = None
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        start, history = int(resume["epoch"]), list(resume["history"])
        best = {"metric": float(resume["best_metric"]), "tiebreak": float(resume["best_tiebreak"]),
                "epoch": int(resume["best_epoch"]), "state": resume["best_model"]}
        resumed_from = start
        log.write(f"resumed after epoch {start} (best {metric_name} {best['metric']:.4f} at epoch {best['epoch']})")
        if start >= epochs:
            log.write(f"nothing to train: the checkpoint already has {start} of {epochs} epochs")
    progress.start(max(0, epochs - start))
    for epoch in range(start + 1, epochs + 1):
        t0 = time.perf_counter()
        progress.begin_case(epoch - start - 1, f"epoch {epoch}/{epochs}")
        seed_torch(epoch_seed(seed, epoch))
        result = run_epoch(epoch, lambda fraction, stage="train": progress.update(stage, fraction))
        seconds = time.perf_counter() - t0
        improved = (result.metric, result.tiebreak) > (best["metric"], best["tiebreak"])
        if improved:
            best = {"metric": result.metric, "tiebreak": result.tiebreak, "epoch": epoch,
                    "state": copy.deepcopy(model.state_dict())}
        record = {"epoch": epoch, "loss": result.loss, metric_name: result.metric, **result.extra,
                  "seconds": round(seconds, 2)}
        history.append(record)
        extras = "".join(f"  {k} {v:.4f}" for k, v in result.extra.items())
        log.write(f"epoch {epoch}/{epochs}  loss {result.loss:.4f}  {metric_name} {result.metric:.4f}{extras}  "
                  f"best {best['metric']:.4f} (epoch {best['epoch']})  {seconds:.1f} s")
        # atomically: a run killed while saving still leaves the previous epoch's checkpoint to resume from
        if improved:
            write_atomically(work / BEST, lambda path: torch.save(model.state_dict(), path))
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "history": history,
                 "best_metric": float(best["metric"]), "best_tiebreak": float(best["tiebreak"]),
                 "best_epoch": best["epoch"], "best_model": best["state"], **(saved or {})}
        write_atomically(work / LAST, lambda path: torch.save(state, path))
        progress.case_done(f"loss {result.loss:.4f}, {metric_name} {result.metric:.4f}", loss=round(result.loss, 6),
                           metric=round(result.metric, 6), epoch=epoch)
    progress.summary()
    return FitResult(best["state"], float(best["metric"]), int(best["epoch"]), history, resumed_from)
