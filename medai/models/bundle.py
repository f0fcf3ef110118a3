"""A model card derived from a MONAI bundle (a folder or a .zip): what its metadata and inference config say.

A bundle holds ``configs/metadata.json``, an inference config (``configs/inference.json``, or ``.yaml`` when PyYAML
is installed) and ``models/model.ts`` (TorchScript) or ``models/model.pt`` (a state dict). The config is read as
data, never executed: ``_target_`` names are matched against the transforms and inferers MedAI's pipeline
reproduces, ``@name`` references are followed and ``$`` expressions accepted only when they are Python literals.
A transform MedAI cannot reproduce is refused; a field the pipeline needs and the bundle does not state is asked
for (an override ``KEY=VALUE``), never guessed.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import zipfile
from pathlib import Path
from typing import Any, Optional

from medai.errors import MedAIError, PathLike
from medai.io.json_file import read_json
from medai.models.card import ModelCard, card_from_dict

#: Weight files of a bundle, in order of preference, and the card runtime each needs.
BUNDLE_WEIGHTS = (("models/model.ts", "torchscript"), ("models/model.pt", "pytorch-state-dict"))

#: Transforms that load, type-convert or save data without changing what the network sees or what it means.
NEUTRAL_TRANSFORMS = {"LoadImaged", "EnsureChannelFirstd", "AddChanneld", "EnsureTyped", "ToTensord", "CastToTyped",
                      "ToDeviced", "Identityd", "Invertd", "SaveImaged", "CopyItemsd", "SqueezeDimd", "DeleteItemsd"}

#: Segment colours for labels the bundle does not colour (Slicer's GenericAnatomyColors, in order).
PALETTE = ("#80ae80", "#f1d691", "#b17a65", "#6fb8d2", "#d8654f", "#dd8265", "#90ee90", "#c06858", "#dcf514",
           "#4e3f00", "#ffface", "#e6dc46")

OVERRIDE_HINT = "give it when installing: medai models install BUNDLE --set {key}=VALUE"


class _Unresolved(Exception):
    """A config value that is an expression or reference MedAI does not evaluate."""


def is_bundle(path: PathLike) -> bool:
    """Whether ``path`` looks like a MONAI bundle: a folder with ``configs/``, or a ``.zip`` file.

    (Whether it is a complete one, :func:`card_from_bundle` tells, naming what is missing.)
    """
    p = Path(path)
    return (p.is_dir() and (p / "configs").is_dir()) or (p.is_file() and p.suffix.lower() == ".zip")


def card_from_bundle(path: PathLike, overrides: Optional[dict[str, Any]] = None) -> ModelCard:
    """The model card of the bundle folder or zip at ``path``; ``overrides`` (dotted keys or nested) win.

    The weight's SHA256 goes into the card, so loading it (``verified_weight``) checks it again. A zip is
    extracted once into ``medai.home.cache_dir('bundles')``, keyed by its SHA256; its weight's SHA256 is taken from
    the archive itself, so a changed cache copy is refused at load time.
    """
    from medai.home import cache_dir

    source = Path(path)
    if not source.exists():
        raise MedAIError("no such model or bundle", source)
    if source.is_file() and source.suffix.lower() == ".zip":
        root, digests = extract_bundle_zip(source)
        name = source.stem if root.parent == cache_dir("bundles") else root.name  # the zip's folder, if any
    else:
        root, digests, name = source, {}, source.name
    derived = BundleReader(root).card_data()
    derived["id"] = slug(name)
    derived["source"] = f"MONAI bundle {derived['name']} {derived['version']} ({source.resolve()})"
    data = apply_overrides(derived, overrides or {})
    for key, what in data.pop("_needs").items():
        if _get(data, key) is None:
            raise MedAIError(f"the bundle does not state {what}; {OVERRIDE_HINT.format(key=key)}", source)
    entry = data["weights"]["segmenter"]
    if "sha256" not in entry:
        from medai.models.weights import sha256_of

        entry["sha256"] = digests.get(entry["path"]) or sha256_of(root / entry["path"])
    return card_from_dict(data, folder=root, origin=source)


def slug(name: str) -> str:
    """A card id from a bundle's name: lower case, letters, digits, ``._-``."""
    text = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")
    return text or "bundle"


def parse_overrides(pairs: list[str], json_file: Optional[PathLike] = None) -> dict[str, Any]:
    """``KEY=VALUE`` pairs (VALUE as JSON, else a string) on top of an overrides JSON file, as one dict."""
    overrides: dict[str, Any] = {}
    if json_file:
        loaded = read_json(json_file, "overrides file")
        if not isinstance(loaded, dict):
            raise MedAIError("an overrides JSON must hold an object", json_file)
        overrides.update(loaded)
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise MedAIError(f"'{pair}' is not KEY=VALUE")
        try:
            overrides[key] = json.loads(text)
        except json.JSONDecodeError:
            overrides[key] = text
    return overrides


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with ``overrides`` set: keys are dotted paths (``inference.roi_size``); dicts merge."""
    out = copy.deepcopy(data)
    for key, value in overrides.items():
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise MedAIError(f"override '{key}': '{part}' is not an object in the card")
        if isinstance(value, dict) and isinstance(node.get(last), dict):
            node[last] = apply_overrides(node[last], value)
        else:
            node[last] = value
    return out


def _get(data: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


# --- zip archives ----------------------------------------------------------------------------------------------

def extract_bundle_zip(path: Path) -> tuple[Path, dict[str, str]]:
    """Extract a bundle zip into the cache (once); returns the bundle's root and the SHA256 of its weight files.

    Entries that would land outside the extraction folder (absolute paths, ``..``, links) are refused before
    anything is written.
    """
    from medai.home import cache_dir
    from medai.io.zip_archive import extract_once, member_sha256, open_checked_zip
    from medai.models.weights import sha256_of

    with open_checked_zip(path, "bundle") as archive:
        prefix = _zip_root(archive, path)
        digests = {relative: member_sha256(archive, prefix + relative) for relative, _runtime in BUNDLE_WEIGHTS
                   if prefix + relative in archive.namelist()}
        target = extract_once(archive, cache_dir("bundles") / sha256_of(path))
    return target / prefix, digests


def _zip_root(archive: zipfile.ZipFile, path: Path) -> str:
    """The folder prefix of the bundle inside the zip: '' or '<name>/'."""
    names = set(archive.namelist())
    if "configs/metadata.json" in names:
        return ""
    roots = [n[: -len("configs/metadata.json")] for n in names if n.endswith("configs/metadata.json")]
    roots = [r for r in roots if r.count("/") == 1]
    if len(roots) != 1:
        raise MedAIError("not a MONAI bundle: the zip holds no configs/metadata.json (at its top or in one folder)",
                         path)
    return roots[0]


# --- reading the bundle -------------------------------------------------------------------------------------------

class BundleReader:
    """Reads one bundle folder's metadata and inference config into card fields (plus ``_needs``: what is missing)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.metadata = self._read_config(root / "configs" / "metadata.json", "metadata")
        self.config_path, self.config = self._inference_config()
        self.needs: dict[str, str] = {}

    def _read_config(self, path: Path, what: str) -> dict[str, Any]:
        if not path.is_file():
            raise MedAIError(f"not a MONAI bundle: configs/{path.name} ({what}) is missing", self.root)
        try:
            if path.suffix in (".yaml", ".yml"):
                try:
                    import yaml
                except ImportError:
                    raise MedAIError("reading a YAML bundle config needs PyYAML (pip install pyyaml)", path) from None
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            else:
                data = json.loads(path.read_text(encoding="utf-8"))
        except MedAIError:
            raise
        except Exception as error:  # noqa: BLE001 - JSON and YAML parsers raise their own error types
            raise MedAIError(f"not a readable bundle config ({' '.join(str(error).split())})", path) from None
        if not isinstance(data, dict):
            raise MedAIError("a bundle config must hold an object", path)
        return data

    def _inference_config(self) -> tuple[Path, dict[str, Any]]:
        configs = self.root / "configs"
        for name in ("inference.json", "inference.yaml", "inference.yml"):
            if (configs / name).is_file():
                return configs / name, self._read_config(configs / name, "inference config")
        raise MedAIError("not a MONAI bundle: configs/inference.json is missing", self.root)

    def fail(self, problem: str) -> MedAIError:
        return MedAIError(problem, self.config_path)

    # references and literals
    def resolve(self, value: Any, depth: int = 0) -> Any:
        """``value`` with ``@id`` references followed and ``$`` literals evaluated; _Unresolved for anything else."""
        if depth > 20:
            raise _Unresolved(value)
        if isinstance(value, list):
            return [self.resolve(v, depth + 1) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v, depth + 1) for k, v in value.items()}
        if not isinstance(value, str):
            return value
        reference = re.fullmatch(r"\$?@([A-Za-z0-9_]+(?:(?:#|::)[A-Za-z0-9_]+)*)", value)
        if reference:
            node: Any = self.config
            for part in re.split("#|::", reference.group(1)):
                if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                    node = node[int(part)]
                elif isinstance(node, dict) and part in node:
                    node = node[part]
                else:
                    raise _Unresolved(value)
            return self.resolve(node, depth + 1)
        if value.startswith("$"):
            try:
                return ast.literal_eval(value[1:].strip())
            except (ValueError, SyntaxError):
                raise _Unresolved(value) from None
        if value.startswith(("@", "%")):
            raise _Unresolved(value)
        return value

    def reference(self, value: Any, where: str) -> Any:
        """``value`` itself, or what it refers to when it is a string (``@id``)."""
        return self.literal(value, where) if isinstance(value, str) else value

    def literal(self, value: Any, where: str) -> Any:
        try:
            return self.resolve(value)
        except _Unresolved as error:
            raise self.fail(f"{where} is {error.args[0]!r}, an expression MedAI does not evaluate") from None

    def transforms(self, key: str) -> list[tuple[str, dict[str, Any]]]:
        """(target name, arguments) of each transform of config ``key`` (a Compose or a list); [] if absent."""
        if key not in self.config:
            return []
        # only references are followed here; arguments are read (and must be literals) where they are used
        value = self.reference(self.config[key], f"'{key}'")
        if isinstance(value, dict):
            if _target_name(value.get("_target_", "")) != "Compose":
                value = [value]
            else:
                value = self.reference(value.get("transforms", []), f"'{key}' transforms")
        if not isinstance(value, list):
            raise self.fail(f"'{key}' is not a list of transforms")
        out = []
        for item in map(lambda v: self.reference(v, f"a transform of '{key}'"), value):
            if not isinstance(item, dict) or "_target_" not in item:
                raise self.fail(f"'{key}' holds an entry that is not a transform with a _target_")
            name = _target_name(item["_target_"], "monai.transforms")
            if name is None:
                raise self.fail(f"'{key}': _target_ '{item['_target_']}' is not a MONAI transform")
            out.append((name, {k: v for k, v in item.items() if k != "_target_"}))
        return out

    # card fields
    def card_data(self) -> dict[str, Any]:
        meta = self.metadata
        out_format = _first(meta.get("network_data_format", {}).get("outputs", {}), "pred")
        in_format = _first(meta.get("network_data_format", {}).get("inputs", {}), "image")
        metadata_path = self.root / "configs" / "metadata.json"
        channels = in_format.get("num_channels", 1)
        if channels != 1:
            raise MedAIError(f"the network takes {channels} input channels; MedAI's pipeline gives it one image",
                             metadata_path)
        if len(in_format.get("spatial_shape", [0, 0, 0])) != 3:
            raise MedAIError("not a 3D network; MedAI segments volumes with 3D bundles", metadata_path)
        if out_format.get("format", "segmentation") != "segmentation":
            raise MedAIError(f"not a segmentation bundle (its output format is '{out_format['format']}'); "
                             "MedAI runs segmentation bundles", metadata_path)
        data: dict[str, Any] = {
            "schema_version": 1,
            "name": str(meta.get("name") or self.root.name),
            "version": str(meta.get("version", "unversioned")),
            "task": "segmentation",
            "description": str(meta.get("description") or meta.get("task") or ""),
            "input": self.input_fields(in_format),
            "license": self.license(),
        }
        data.update(self.weights_fields())
        data["preprocessing"] = self.preprocessing()
        data["inference"] = self.inference()
        post, output = self.postprocessing()
        data["postprocessing"] = post
        if output:
            data["inference"]["output"] = output
        labels, foreground = self.labels(out_format, post)
        if labels:
            data["labels"] = labels
        else:
            self.needs["labels"] = "the names of its output channels (network_data_format outputs channel_def)"
        if foreground is not None:
            data["inference"]["foreground_channel"] = foreground
        data["_needs"] = self.needs
        return data

    def input_fields(self, in_format: dict[str, Any]) -> dict[str, Any]:
        modality = str(in_format.get("modality", "")).upper()
        fields: dict[str, Any] = {"modality": "MR" if modality.startswith("MR") else modality if modality in (
            "CT", "CR", "DX", "US", "PT") else "any", "dimensions": 3}
        body_part = in_format.get("body_part") or self.metadata.get("body_part")
        if body_part:
            fields["body_part"] = str(body_part)
        return fields

    def license(self) -> str:
        for name in ("LICENSE", "LICENSE.txt", "docs/LICENSE"):
            path = self.root / name
            if path.is_file():
                lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
                first = next((line for line in lines if line), "")
                if first:
                    return f"{first} (bundle {name})"
        if self.metadata.get("license"):
            return str(self.metadata["license"])
        copyright_ = self.metadata.get("copyright")
        return f"not stated in the bundle{f' ({copyright_})' if copyright_ else ''}"

    def weights_fields(self) -> dict[str, Any]:
        for relative, runtime in BUNDLE_WEIGHTS:
            if (self.root / relative).is_file():
                fields: dict[str, Any] = {"runtime": runtime, "weights": {"segmenter": {"path": relative}}}
                if runtime == "pytorch-state-dict":
                    fields["network"] = self.network()
                return fields
        raise MedAIError("not a MONAI bundle: neither models/model.ts nor models/model.pt is there", self.root)

    def network(self) -> dict[str, Any]:
        """The ``network`` of a state-dict card: a monai.networks.nets class and its literal arguments."""
        from medai.models.network_classes import monai_network_class

        definition = self.config.get("network_def")
        if not isinstance(definition, dict) or "_target_" not in definition:
            raise self.fail("models/model.pt needs a 'network_def' with a _target_ to build the network")
        name = _target_name(definition["_target_"], "monai.networks.nets")
        if name is None:
            raise self.fail(f"network_def _target_ '{definition['_target_']}' is not a class of monai.networks.nets")
        try:
            monai_network_class(name)
        except MedAIError as error:
            raise self.fail(error.problem) from None
        args = {}
        for key, value in definition.items():
            if key.startswith("_"):
                continue
            try:
                args[key] = self.resolve(value)
            except _Unresolved:
                self.needs[f"network.args.{key}"] = f"network_def argument '{key}' as a literal (it is {value!r})"
        return {"name": name, "args": args}

    def preprocessing(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"orientation": "none"}
        intensity = []
        for name, args in self.transforms("preprocessing"):
            where = f"preprocessing {name}"
            if name in NEUTRAL_TRANSFORMS:
                continue
            if name == "Orientationd":
                axcodes = self.literal(args.get("axcodes"), f"{where} axcodes")
                if axcodes not in ("RAS", "LPS"):
                    raise self.fail(f"{where}: axcodes {axcodes!r} is not RAS or LPS (the orientations MedAI "
                                    "reproduces)")
                spec["orientation"] = axcodes
            elif name == "Spacingd":
                pixdim = self.literal(args.get("pixdim"), f"{where} pixdim")
                pixdim = [pixdim] * 3 if isinstance(pixdim, (int, float)) else pixdim
                if not (isinstance(pixdim, list) and len(pixdim) == 3 and all(
                        isinstance(v, (int, float)) and v > 0 for v in pixdim)):
                    raise self.fail(f"{where}: pixdim {pixdim!r} is not three positive spacings")
                spec["spacing"] = [float(v) for v in pixdim]
            elif name == "ScaleIntensityRanged":
                values = {k: self.literal(args.get(k), f"{where} {k}") for k in ("a_min", "a_max", "b_min", "b_max")}
                if any(not isinstance(v, (int, float)) for v in values.values()):
                    raise self.fail(f"{where}: a_min, a_max, b_min and b_max must all be numbers")
                clip = bool(self.literal(args.get("clip", False), f"{where} clip"))  # MONAI's default: no clipping
                intensity.append({"type": "range", **{k: float(v) for k, v in values.items()}, "clip": clip})
            elif name == "NormalizeIntensityd":
                plain = all(not self.literal(args.get(k), f"{where} {k}") for k in
                            ("nonzero", "channel_wise", "subtrahend", "divisor"))
                if not plain:
                    raise self.fail(f"{where}: only the plain z-score (no nonzero, channel_wise, subtrahend, divisor) "
                                    "is reproduced by MedAI")
                intensity.append({"type": "zscore"})
            else:
                raise self.fail(f"preprocessing transform {name} is not one MedAI's pipeline reproduces")
        if len(intensity) > 1:
            raise self.fail("preprocessing normalises intensities more than once; MedAI reproduces one normalisation")
        spec["intensity"] = intensity[0] if intensity else {"type": "none"}
        return spec

    def inference(self) -> dict[str, Any]:
        inferer = self.config.get("inferer")
        if inferer is None:
            self.needs["inference.mode"] = "how to run the network (no 'inferer' in the config)"
            return {}
        inferer = self.reference(inferer, "'inferer'")
        name = _target_name(inferer.get("_target_", "") if isinstance(inferer, dict) else "", "monai.inferers")
        if name == "SimpleInferer":
            return {"mode": "whole"}
        if name == "SlidingWindowInferer":
            roi = self.literal(inferer.get("roi_size"), "inferer roi_size")
            roi = [roi] * 3 if isinstance(roi, int) else roi
            if not (isinstance(roi, list) and len(roi) == 3 and all(isinstance(v, int) and v > 0 for v in roi)):
                raise self.fail(f"inferer roi_size {roi!r} is not three positive sizes")
            overlap = self.literal(inferer.get("overlap", 0.25), "inferer overlap")  # MONAI's defaults
            blend = self.literal(inferer.get("mode", "constant"), "inferer mode")
            if blend not in ("constant", "gaussian"):
                raise self.fail(f"inferer mode {blend!r} is not constant or gaussian")
            return {"mode": "sliding-window", "roi_size": roi, "overlap": float(overlap), "blend_mode": blend}
        raise self.fail(f"inferer {name or inferer!r} is not SimpleInferer or SlidingWindowInferer")

    def postprocessing(self) -> tuple[dict[str, Any], Optional[str]]:
        """(card postprocessing, card inference output) from the config's postprocessing transforms."""
        spec: dict[str, Any] = {}
        output = None
        for name, args in self.transforms("postprocessing"):
            where = f"postprocessing {name}"
            if name in NEUTRAL_TRANSFORMS:
                continue
            if name == "Activationsd":
                if self.literal(args.get("softmax", False), f"{where} softmax"):
                    output = "softmax"
                elif self.literal(args.get("sigmoid", False), f"{where} sigmoid"):
                    output = "sigmoid"
            elif name == "AsDiscreted":
                if self.literal(args.get("argmax", False), f"{where} argmax"):
                    spec["argmax"] = True
                threshold = self.literal(args.get("threshold"), f"{where} threshold")
                if threshold is None and self.literal(args.get("threshold_values", False), f"{where} threshold_values"):
                    threshold = self.literal(args.get("logit_thresh", 0.5), f"{where} logit_thresh")
                if isinstance(threshold, (int, float)) and not isinstance(threshold, bool):
                    spec["threshold"] = float(threshold)
            elif name == "KeepLargestConnectedComponentd":
                spec["largest_component"] = True
            elif name == "FillHolesd":
                spec["fill_holes"] = True
            else:
                raise self.fail(f"postprocessing transform {name} is not one MedAI's pipeline reproduces")
        if not spec.get("argmax") and "threshold" not in spec:
            self.needs["postprocessing.argmax"] = "how to turn its output into labels (AsDiscreted argmax or threshold)"
        return spec, output or "logits"

    def labels(self, out_format: dict[str, Any], post: dict[str, Any]) -> tuple[list[dict[str, Any]], Optional[int]]:
        """Card labels from the output's channel_def (channel 0 is background unless the output has one channel)."""
        channel_def = out_format.get("channel_def") or {}
        count = out_format.get("num_channels") or len(channel_def)
        if not channel_def or not count:
            return [], None
        if count == 1:
            channels, foreground = [0], 0
        else:
            channels = list(range(1, count))
            foreground = 1 if "threshold" in post and not post.get("argmax") else None
            if foreground is not None and count > 2:
                raise self.fail("a threshold on more than two output channels (overlapping labels) is not reproduced")
        names = [channel_def.get(str(c)) for c in channels]
        if any(not n for n in names):
            return [], None
        return [{"value": value, "name": str(name), "color": PALETTE[(value - 1) % len(PALETTE)]}
                for value, name in enumerate(names, start=1)], foreground


def _first(formats: dict[str, Any], preferred: str) -> dict[str, Any]:
    if not isinstance(formats, dict) or not formats:
        return {}
    value = formats.get(preferred, next(iter(formats.values())))
    return value if isinstance(value, dict) else {}


def _target_name(target: Any, package: str = "monai") -> Optional[str]:
    """The class name of a ``_target_`` ('Orientationd', 'monai.transforms.Orientationd'); None outside ``package``."""
    if not isinstance(target, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", target):
        return None
    if "." not in target:
        return target
    module, _, name = target.rpartition(".")
    return name if (module + ".").startswith(package + ".") else None
