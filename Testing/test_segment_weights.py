"""Model cards and weight files: SHA256 checks before anything is loaded, card validation, the catalog, URL
weights fetched only on request (from a local HTTP server), and no network socket during inference.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import http.server
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from conftest import ITK_T1
from medai import MedAIError
from medai.metrics import dice
from medai.models import get_card, list_cards
from medai.models.card import SCHEMA_PATH
from medai.models.catalog import BUILTIN_DIR
from medai.models.weights import cache_dir, fetch_weights, locate_weight, verified_weight
from medai.pipeline import Segmenter


def medai(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medai.cli.main", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def write_card(folder: Path, weights: dict, filename: str = "card.json", **changes) -> Path:
    """A user card: the built-in brain-extraction card with other ``weights`` (and top-level ``changes``)."""
    data = copy.deepcopy(get_card("brain-extraction").data)
    data.update({"id": "my-brain", "weights": weights, **changes})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / filename).write_text(json.dumps(data, indent=1))
    return folder / filename


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- SHA256 before loading ----------------------------------------------------------------------------------

@pytest.fixture()
def corrupted_weights(tmp_path) -> tuple[Path, dict]:
    """Copies of the built-in weights, the segmenter's cut short (so loading it would fail on its own)."""
    builtin = get_card("brain-extraction")
    weights = {}
    for role in builtin.weights:
        data = locate_weight(builtin, role).read_bytes()
        if role == "segmenter":
            data = data[: len(data) // 2]
        (tmp_path / f"{role}.pt").write_bytes(data)
        weights[role] = {"path": f"{role}.pt", "sha256": builtin.weights[role]["sha256"]}
    return tmp_path, weights


def test_a_weight_failing_its_sha256_is_never_loaded(corrupted_weights, colin27_crop, monkeypatch):
    import torch

    folder, weights = corrupted_weights
    card = get_card(write_card(folder, weights))
    loaded = []
    real_load = torch.jit.load
    monkeypatch.setattr(torch.jit, "load", lambda path, *a, **k: loaded.append(path) or real_load(path, *a, **k))
    with pytest.raises(MedAIError, match="failed its SHA256 check") as error:
        Segmenter(card, device="cpu")(colin27_crop)
    assert error.value.path == str(folder / "segmenter.pt")
    assert "refusing to load it" in str(error.value) and "\n" not in str(error.value)
    assert not any("segmenter" in str(path) for path in loaded)

    # control: with the damaged file's own checksum, the same file reaches torch.jit.load and fails there
    weights["segmenter"]["sha256"] = sha256((folder / "segmenter.pt").read_bytes())
    card = get_card(write_card(folder, weights))
    with pytest.raises(MedAIError, match="not a loadable TorchScript model"):
        Segmenter(card, device="cpu").load()
    assert any("segmenter" in str(path) for path in loaded)


def test_the_command_line_refuses_it_in_one_line(corrupted_weights, tmp_path):
    folder, weights = corrupted_weights
    card = write_card(folder, weights)
    run = medai("segment", ITK_T1, "-o", tmp_path / "brain.seg.nrrd", "--model", card)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"medai: error: {folder / 'segmenter.pt'}: weight file of model 'my-brain' failed its SHA256")
    assert not (tmp_path / "brain.seg.nrrd").exists()


# --- cards ----------------------------------------------------------------------------------------------------

def test_builtin_cards_validate_against_the_schema_and_their_weights_match():
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    files = sorted(BUILTIN_DIR.glob("*.json"))
    assert BUILTIN_DIR / "brain-extraction.json" in files
    for path in files:
        jsonschema.Draft202012Validator(schema).validate(json.loads(path.read_text()))
        get_card(path)  # and medai's own checks beyond the schema
    card = get_card("brain-extraction")
    assert [verified_weight(card, role).name for role in card.weights] == ["bbox_model.pt", "model.pt"]


INVALID_CARDS = {
    "a task the schema does not know": ({"task": "detection"}, "invalid model card at task"),
    "a weight without a checksum": ({"weights": {"net": {"path": "net.pt"}}}, "invalid model card at weights/net"),
    "an unknown key": ({"extra": 1}, "invalid model card at (top level)"),
}


@pytest.mark.parametrize("problem", INVALID_CARDS)
def test_an_invalid_card_is_one_line_naming_the_file(tmp_path, problem):
    changes, words = INVALID_CARDS[problem]
    data = copy.deepcopy(get_card("brain-extraction").data)
    data.update(changes)
    path = tmp_path / "bad-card.json"
    path.write_text(json.dumps(data))
    with pytest.raises(MedAIError) as error:
        get_card(path)
    message = str(error.value)
    assert message.startswith(f"{path}: {words}") and "\n" not in message


def test_a_card_that_is_not_json_is_one_line_on_the_command_line(tmp_path):
    path = tmp_path / "card.json"
    path.write_text('{"id": "x",')
    run = medai("segment", ITK_T1, "-o", tmp_path / "out.nii.gz", "--model", path)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"medai: error: {path}: not a JSON model card")


def test_list_cards_lists_builtin_then_user_cards(tmp_path):
    builtin = [card.id for card in list_cards(tmp_path / "no-such-folder")]
    assert "brain-extraction" in builtin
    weights = {"net": {"path": "net.pt", "sha256": "0" * 64}}
    write_card(tmp_path, weights, "my-brain.json")
    write_card(tmp_path / "package", weights, id="packaged-brain")
    ids = [card.id for card in list_cards(tmp_path)]
    assert ids == builtin + ["my-brain", "packaged-brain"]
    assert get_card("packaged-brain", tmp_path).folder == tmp_path / "package"
    with pytest.raises(MedAIError, match=f"unknown model; known models: {', '.join(ids)}"):
        get_card("no-such-model", tmp_path)
    # a user card with a built-in id replaces the built-in one
    write_card(tmp_path, weights, "override.json", id="brain-extraction", name="My brain extraction")
    cards = {card.id: card for card in list_cards(tmp_path)}
    assert cards["brain-extraction"].name == "My brain extraction" and list(cards) == ids


# --- URL weights: fetched only on request, checksummed, cached ----------------------------------------------

class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        super().do_GET()


@pytest.fixture()
def weight_server(tmp_path):
    """A threaded HTTP server on 127.0.0.1 serving ``tmp_path / 'served'``; yields (base URL, folder, requests)."""
    served = tmp_path / "served"
    served.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(served)))
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served, server.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_a_url_weight_is_fetched_only_by_fetch_weights_and_cached(weight_server, tmp_path, monkeypatch):
    base, served, requests = weight_server
    monkeypatch.setenv("MEDAI_HOME", str(tmp_path / "home"))
    payload = np.random.default_rng(0).bytes(300_000)
    (served / "net.pt").write_bytes(payload)
    card = get_card(write_card(tmp_path / "cards", {"net": {"url": f"{base}/net.pt", "sha256": sha256(payload)}}))

    with pytest.raises(MedAIError, match="not downloaded; run: medai models fetch my-brain"):
        Segmenter(card, device="cpu").load()
    assert requests == []  # loading never downloads

    (path,) = fetch_weights(card)
    assert path.parent.parent == cache_dir() and cache_dir().is_relative_to(tmp_path / "home")
    assert path.read_bytes() == payload and requests == ["/net.pt"]
    assert verified_weight(card, "net") == path
    assert fetch_weights(card) == [path] and requests == ["/net.pt"]  # cached: no second download
    assert files_under(tmp_path / "home") == [path]


@pytest.mark.parametrize("served_name, words", [("net.pt", "failed its SHA256 check"), ("other.pt", "HTTP Error 404")])
def test_a_failed_download_leaves_nothing_in_the_cache(weight_server, tmp_path, monkeypatch, served_name, words):
    base, served, requests = weight_server
    monkeypatch.setenv("MEDAI_HOME", str(tmp_path / "home"))
    (served / served_name).write_bytes(b"not the weights the card describes")
    card = get_card(write_card(tmp_path / "cards", {"net": {"url": f"{base}/net.pt", "sha256": "1" * 64}}))
    with pytest.raises(MedAIError, match=words) as error:
        fetch_weights(card)
    assert error.value.path == f"{base}/net.pt"
    assert requests == ["/net.pt"]
    assert files_under(tmp_path / "home") == []


# --- no network during inference ----------------------------------------------------------------------------

def test_inference_opens_no_network_socket(itk_t1, itk_t1_brain_mask, monkeypatch):
    attempts = []

    def refuse(name):
        def blocked(*args, **kwargs):
            attempts.append((name, args[1:] if name.startswith("socket.") else args))
            raise OSError(f"network access during inference: {name}{args}")
        return blocked

    for name in ("connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, name, refuse(f"socket.{name}"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))

    result = Segmenter("brain-extraction", device="cpu")(itk_t1)  # a fresh one: loading the weights is covered too
    assert attempts == []
    assert dice(result.label_map.array > 0, itk_t1_brain_mask.array > 0) >= 0.95
