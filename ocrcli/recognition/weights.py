"""Self-describing model files: safetensors with the charset, network spec and provenance inside."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ocrcli.errors import ModelError

FORMAT = "ocrcli-crnn"
FORMAT_VERSION = 1
NORMALIZATION = "percentile-stretch-v1"


@dataclass(frozen=True)
class ModelInfo:
    """Metadata stored in a model file's safetensors header."""

    alphabet: str
    spec: dict
    normalization: str = NORMALIZATION
    info: dict = field(default_factory=dict)  # provenance: training data, val CER, ...

    def to_metadata(self) -> dict[str, str]:
        return {
            "format": FORMAT,
            "format_version": str(FORMAT_VERSION),
            "alphabet": self.alphabet,
            "spec": json.dumps(self.spec),
            "normalization": self.normalization,
            "info": json.dumps(self.info, ensure_ascii=False),
        }


def save_model(path: Path, state_dict: dict, info: ModelInfo) -> None:
    """Write weights and metadata atomically (temp file + rename)."""
    from safetensors.torch import save_file

    # cuDNN may leave LSTM weights as views of one flat buffer; safetensors needs plain tensors.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata=info.to_metadata())
    tmp.replace(path)


def read_metadata(path: Path) -> ModelInfo:
    """Read and validate a model file's metadata without loading its tensors."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for truncated/garbled headers
        raise ModelError(f"{path}: not a readable safetensors model file ({exc})") from None
    if meta.get("format") != FORMAT:
        raise ModelError(f"{path}: not an ocrcli model (format {meta.get('format')!r})")
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise ModelError(f"{path}: bad format_version {meta.get('format_version')!r}") from None
    if version > FORMAT_VERSION:
        raise ModelError(f"{path}: model format {version} is newer than this ocrcli understands ({FORMAT_VERSION}); upgrade ocrcli")
    if meta.get("normalization") != NORMALIZATION:
        raise ModelError(f"{path}: unknown input normalization {meta.get('normalization')!r}")
    try:
        spec = json.loads(meta["spec"])
        info = json.loads(meta.get("info", "{}"))
        alphabet = meta["alphabet"]
    except (KeyError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: damaged model metadata ({exc})") from None
    if not alphabet or int(spec.get("num_classes", -1)) != len(alphabet) + 1:
        raise ModelError(f"{path}: charset size does not match the network's output size")
    return ModelInfo(alphabet=alphabet, spec=spec, normalization=meta["normalization"], info=info)


def load_model(path: Path, device: str = "cpu"):
    """Rebuild the network from a model file. Returns (model in eval mode, ModelInfo)."""
    from safetensors.torch import load_file

    from ocrcli.recognition.model import CRNN, CRNNSpec

    info = read_metadata(path)
    try:
        spec = CRNNSpec.from_dict(info.spec)
        model = CRNN(spec)
        tensors = load_file(str(path), device="cpu")
        model.load_state_dict(tensors, strict=True)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise ModelError(f"{path}: weights do not fit the network described in the file ({str(exc)[:200]})") from None
    model.eval()
    return model.to(device), info


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
