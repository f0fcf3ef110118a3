"""Installing models into the user's catalog (``user_models_dir()/<id>/``) and removing them.

A model package (a folder with ``card.json`` and its weight files) or a MONAI bundle (folder or zip; its card is
derived and written as ``card.json``) is copied into a staging folder beside the destination, its weights are
SHA256-checked there, and only then is the folder renamed into place: an installation is complete or absent.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Optional

from medai.errors import MedAIError, PathLike
from medai.models.card import ModelCard, card_from_dict, load_card


def install_model(source: PathLike, model_id: Optional[str] = None, force: bool = False,
                  overrides: Optional[dict[str, Any]] = None) -> ModelCard:
    """Install the package or bundle at ``source`` as ``model_id`` (default: its card's id); returns the installed card.

    Refuses to replace an installed model unless ``force``; ``overrides`` (``KEY=VALUE`` card fields) apply to a
    bundle's derived card.
    """
    import json

    from medai.io.atomic import publish_folder, staging_folder
    from medai.models.bundle import apply_overrides, card_from_bundle, is_bundle
    from medai.home import user_models_dir

    path = model_source(source)
    if path.is_dir() and (path / "card.json").is_file():
        card = load_card(path / "card.json")
        if overrides:
            card = card_from_dict(apply_overrides(card.data, overrides), card.folder, path / "card.json")
    elif is_bundle(path):
        card = card_from_bundle(path, overrides)
    else:
        raise MedAIError("not a model package (no card.json) nor a MONAI bundle (no configs/metadata.json, or a zip)",
                         path)
    data = dict(card.data, id=model_id or card.id)
    card_from_dict(data, origin=path)  # a bad --id fails here, before anything is copied
    _verify_weights(card)

    models = user_models_dir()
    models.mkdir(parents=True, exist_ok=True)
    target = models / data["id"]
    if target.exists() and not force:
        raise MedAIError(f"model '{data['id']}' is already installed; use --force to replace it", target)
    with staging_folder(models) as staged:
        package = staged / "package"
        shutil.copytree(card.folder, package, symlinks=False, ignore=shutil.ignore_patterns(".*", "__pycache__"))
        data["weights"] = _local_entries(card, card.weights, package)
        if "onnx_weights" in data:
            data["onnx_weights"] = _local_entries(card, data["onnx_weights"], package)
        (package / "card.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        installed = load_card(package / "card.json")
        _verify_weights(installed)  # the copy, as it will be loaded
        replaced = _move_aside(target, staged) if target.exists() else None
        try:
            publish_folder(package, target)
        except OSError:
            if replaced is not None:
                os.replace(replaced, target)
            raise
    return load_card(target / "card.json")


def model_source(path: PathLike) -> Path:
    """The package or bundle that ``path`` is or points into: a package's ``card.json`` or a bundle's
    ``configs/metadata.json`` stand for their folder (a file dialog picks files, not folders)."""
    p = Path(path)
    if not p.exists():
        raise MedAIError("no such model package or bundle", p)
    if p.is_file() and p.name == "card.json":
        return p.parent
    if p.is_file() and p.name == "metadata.json" and p.parent.name == "configs":
        return p.parent.parent
    return p


def remove_model(model_id: str) -> Path:
    """Remove the installed model ``model_id`` from the user's folder; returns what was removed."""
    from medai.home import user_models_dir
    from medai.models.catalog import is_builtin, list_cards

    models = user_models_dir()
    for card in reversed(list_cards()):  # a user card comes after a built-in one with the same id
        if card.id != model_id:
            continue
        if is_builtin(card):
            raise MedAIError(f"model '{model_id}' is built into MedAI and cannot be removed")
        folder = card.folder.resolve()
        if folder.parent == models.resolve():  # an installed package: its whole folder
            doomed = folder.with_name(f".removing-{folder.name}")
            os.replace(folder, doomed)
            shutil.rmtree(doomed)
            return folder
        card_file = next(p for p in models.glob("*.json") if load_card(p).id == model_id)
        card_file.unlink()
        return card_file
    raise MedAIError(f"model '{model_id}' is not installed")


def _verify_weights(card: ModelCard) -> None:
    """SHA256-check every weight file of ``card`` (its ``weights`` and ``onnx_weights``) that is on this machine."""
    from medai.models.weights import verified_weight

    views = [card] + ([ModelCard(data={**card.data, "weights": card.data["onnx_weights"]}, folder=card.folder)]
                      if card.data.get("onnx_weights") else [])
    for view in views:
        for role, entry in view.weights.items():
            if entry.get("path") or entry.get("distribution"):
                verified_weight(view, role)


def _local_entries(card: ModelCard, entries: dict[str, dict[str, Any]], package: Path) -> dict[str, dict[str, Any]]:
    """Weight entries for the installed copy: files outside the package are copied into ``weights/`` beside it."""
    from medai.models.weights import locate_weight

    out = {}
    view = ModelCard(data={**card.data, "weights": entries}, folder=card.folder)
    for role, entry in entries.items():
        entry = dict(entry)
        if entry.get("path") and not entry.get("distribution"):
            location = locate_weight(view, role).resolve()
            if not location.is_relative_to(card.folder.resolve()):
                (package / "weights").mkdir(exist_ok=True)
                shutil.copy2(location, package / "weights" / location.name)
                entry["path"] = f"weights/{location.name}"
            else:
                entry["path"] = location.relative_to(card.folder.resolve()).as_posix()
        out[role] = entry
    return out


def _move_aside(target: Path, staged: Path) -> Path:
    """Move the installed ``target`` into the staging folder (removed with it); returns where it went."""
    aside = staged / "replaced"
    os.replace(target, aside)
    return aside
