"""Batched line recognition with a loaded model: crops in, (text, confidence) out."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ocrcli.errors import DeviceError, ModelError
from ocrcli.recognize.charset import Charset
from ocrcli.recognize.decode import greedy_decode
from ocrcli.recognize.lineimage import normalize_line

MODEL_ENV = "OCRCLI_MODEL"
DEFAULT_MODEL_NAME = "ocrcli-crnn-v1.safetensors"


def default_model_path() -> Path:
    """The model used when none is given: $OCRCLI_MODEL, else the one shipped in models/."""
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent.parent  # ocrcli/
    for candidate in (here / "models" / DEFAULT_MODEL_NAME, here.parent / "models" / DEFAULT_MODEL_NAME):
        if candidate.is_file():
            return candidate
    return here.parent / "models" / DEFAULT_MODEL_NAME


def resolve_device(requested: str) -> str:
    """'auto' -> 'cuda' when a GPU is usable, else 'cpu'; an explicit CUDA device must exist."""
    import torch

    requested = requested.strip().lower()
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cpu":
        return "cpu"
    if requested == "cuda" or requested.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {requested!r} requested but no CUDA GPU is available", hint="use --device cpu or auto")
        if ":" in requested:
            try:
                index = int(requested.split(":", 1)[1])
            except ValueError:
                raise DeviceError(f"bad device {requested!r}", hint="use cuda:N with N a GPU number") from None
            if index >= torch.cuda.device_count():
                raise DeviceError(f"device {requested!r} requested but only {torch.cuda.device_count()} GPU(s) present")
        return requested
    raise DeviceError(f"unknown device {requested!r}", hint="use auto, cpu, cuda or cuda:N")


@dataclass(frozen=True)
class LineText:
    text: str
    confidence: float
    char_x: tuple[float, ...] = ()  # x of each character of text, in the crop's pixels (from the CTC alignment)
    char_probs: tuple[float, ...] = ()


class Recognizer:
    """Loads a model once and recognises batches of grayscale line crops."""

    def __init__(self, model_path: Path | None = None, device: str = "auto", batch_size: int = 32) -> None:
        import torch

        self.model_path = Path(model_path) if model_path else default_model_path()
        self.device = resolve_device(device)
        from ocrcli.recognize.weights import file_sha256, load_model

        self.model, self.info = load_model(self.model_path, self.device)
        self.sha256 = file_sha256(self.model_path)
        self.charset = Charset(self.info.alphabet)
        self.batch_size = max(1, batch_size)
        self._torch = torch
        if self.device.startswith("cuda"):
            self.model.half()

    @property
    def model_id(self) -> str:
        return self.model_path.stem

    def recognize(self, crops: list[np.ndarray]) -> list[LineText]:
        """Text and confidence for each crop (uint8 grayscale, dark ink on light paper)."""
        torch = self._torch
        spec = self.model.spec
        results: list[LineText | None] = [None] * len(crops)
        prepared = [normalize_line(c, spec.height) if c.size else None for c in crops]
        order = sorted((i for i, p in enumerate(prepared) if p is not None), key=lambda i: prepared[i].shape[1])
        for i, p in enumerate(prepared):
            if p is None:
                results[i] = LineText("", 0.0)
        stride = spec.width_stride
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                width = -(-max(prepared[i].shape[1] for i in idx) // stride) * stride
                batch = np.zeros((len(idx), 1, spec.height, width), np.float32)
                for j, i in enumerate(idx):
                    batch[j, 0, :, : prepared[i].shape[1]] = prepared[i]
                x = torch.from_numpy(batch).to(self.device)
                if self.device.startswith("cuda"):
                    x = x.half()
                try:
                    out = self.model(x).float().cpu().numpy()
                except RuntimeError as exc:
                    raise ModelError(f"{self.model_path}: recognition failed ({str(exc)[:200]})") from None
                for j, i in enumerate(idx):
                    steps = max(1, prepared[i].shape[1] // stride)
                    decoded = greedy_decode(out[:steps, j])
                    scale = stride * crops[i].shape[1] / prepared[i].shape[1]  # frame -> crop pixels
                    xs = tuple((f + 0.5) * scale for f in decoded.frames)
                    results[i] = LineText(self.charset.decode(decoded.labels), decoded.confidence, xs, tuple(decoded.probs))
        return results  # type: ignore[return-value]
