"""A tiny ONNX image classifier the tests build themselves, so thresholds and policy are exercised with scores the
test controls: the score of label ``red`` is sigmoid(2k (mean red - mean blue)), for pixels scaled to [0, 1].
A pure red picture scores ~1, a pure blue one ~0, a grey one exactly 0.5; the colour of benign flat pictures the
tests draw sets the score."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image


def build_model(path: Path, k: float = 5.0, layout: str = "NCHW") -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    axes = [2, 3] if layout == "NCHW" else [1, 2]
    shape = ["N", 3, "H", "W"] if layout == "NCHW" else ["N", "H", "W", 3]
    weights = np.array([[k, -k], [0.0, 0.0], [-k, k]], dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["x"], ["m"], axes=axes, keepdims=0),
            helper.make_node("MatMul", ["m", "w"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["p"], axis=1),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 2])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def write_config(folder: Path, name: str = "tiny", fmt: str = "toml", **over: object) -> Path:
    """A model config beside a freshly built model (``over`` replaces settings)."""
    layout = str(over.get("layout", "NCHW"))
    build_model(folder / f"{name}.onnx", layout=layout)
    cfg: dict[str, object] = {
        "name": name,
        "model": f"{name}.onnx",
        "input_size": [16, 16],
        "layout": layout,
        "channels": "RGB",
        "scale": 255.0,
        "mean": [0.0, 0.0, 0.0],
        "std": [1.0, 1.0, 1.0],
        "labels": ["red", "blue"],
        "score_label": "red",
        "softmax": False,
    }
    cfg.update(over)
    path = folder / f"{name}.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(cfg))
    else:
        lines = []
        for key, v in cfg.items():
            lines.append(f"{key} = {json.dumps(v)}")
        path.write_text("\n".join(lines) + "\n")
    return path


def flat_picture(red: int, blue: int, size: tuple[int, int] = (40, 30), fmt: str = "PNG") -> bytes:
    """A flat benign picture of one colour (green fixed at 128)."""
    buf = io.BytesIO()
    Image.new("RGB", size, (red, 128, blue)).save(buf, fmt)
    return buf.getvalue()


def expected_score(red: int, blue: int, k: float = 5.0) -> float:
    d = (red - blue) / 255.0
    return float(1 / (1 + np.exp(-2 * k * d)))
