import json

import numpy as np
import pytest
import torch

from conftest import MODEL
from ocrcli.errors import ModelError
from ocrcli.recognition.model import CRNN, CRNNSpec
from ocrcli.recognition.weights import FORMAT_VERSION, ModelInfo, load_model, read_metadata, save_model


def _tiny(tmp_path, **meta):
    spec = CRNNSpec(num_classes=5, height=16, channels=(4, 4), pools=((2, 2), (2, 2)), hidden=8, layers=1)
    model = CRNN(spec)
    path = tmp_path / "tiny.safetensors"
    save_model(path, model.state_dict(), ModelInfo(alphabet="abcd", spec=spec.to_dict(), info={"val_cer": 0.5, **meta}))
    return path, model


def test_model_file_is_self_describing_and_round_trips(tmp_path):
    path, model = _tiny(tmp_path)
    loaded, info = load_model(path)
    assert info.alphabet == "abcd" and info.info["val_cer"] == 0.5
    assert loaded.spec == model.spec
    x = torch.rand(2, 1, 16, 40)
    model.eval()
    with torch.inference_mode():
        assert torch.allclose(model(x), loaded(x))


def test_batch_norm_folded_into_the_convolutions_reads_the_same(tmp_path):
    spec = CRNNSpec(num_classes=5, height=16, channels=(4, 6), pools=((2, 2), (2, 2)), hidden=8, layers=1)
    torch.manual_seed(0)
    model = CRNN(spec)
    for layer in model.cnn:  # statistics far from the initial 0 / 1, as after training
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.running_mean.uniform_(-2, 2)
            layer.running_var.uniform_(0.2, 3)
            layer.weight.data.uniform_(0.5, 2)
            layer.bias.data.uniform_(-1, 1)
    with pytest.raises(RuntimeError, match="eval"):
        model.fuse_batch_norm()
    model.eval()
    x = torch.rand(3, 1, 16, 56)
    with torch.inference_mode():
        before = model(x)
        model.fuse_batch_norm()
        after = model(x)
    assert not any(isinstance(layer, torch.nn.BatchNorm2d) for layer in model.cnn)
    assert torch.allclose(before, after, atol=1e-5)


def test_missing_truncated_and_foreign_files_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        read_metadata(tmp_path / "nope.safetensors")
    path, _ = _tiny(tmp_path)
    data = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="cut.safetensors"):
        load_model(cut)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="junk.safetensors"):
        load_model(junk)
    pickle = tmp_path / "model.pt"
    torch.save({"a": torch.zeros(1)}, pickle)
    with pytest.raises(ModelError, match="model.pt"):
        load_model(pickle)


def _rewrite_metadata(path, **changes):
    """Rewrite a safetensors header's metadata in place (the format is an 8-byte length + JSON)."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header["__metadata__"].update(changes)
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + n:])


def test_newer_format_and_mismatched_charset_are_refused(tmp_path):
    path, _ = _tiny(tmp_path)
    _rewrite_metadata(path, format_version=str(FORMAT_VERSION + 1))
    with pytest.raises(ModelError, match="newer"):
        load_model(path)
    path, _ = _tiny(tmp_path)
    _rewrite_metadata(path, alphabet="abcdef")
    with pytest.raises(ModelError, match="charset"):
        load_model(path)


def test_wide_lines_are_read_in_bounded_pieces(monkeypatch):
    """A line many times wider than a piece gives the same text as reading it whole."""
    from conftest import render_line
    from ocrcli.recognition import engine

    if not MODEL.is_file():
        pytest.skip("shipped model missing")
    rec = engine.Recognizer(MODEL, "cpu")
    line = np.hstack([render_line("Wide line number one two three")] * 6)
    whole = rec.recognize([line])[0]
    widths = []
    forward = rec.model.forward
    monkeypatch.setattr(rec.model, "forward", lambda x: (widths.append(x.shape[-1]), forward(x))[1])
    monkeypatch.setattr(engine, "CHUNK_WIDTH", 512)
    pieces = rec.recognize([line])[0]
    assert max(widths) <= 512 and len(widths) >= 1
    assert whole.text and len(pieces.char_x) == len(pieces.text)
    from ocrcli.metrics import ErrorCounter

    counter = ErrorCounter()
    counter.add(pieces.text, whole.text)
    assert counter.cer < 0.05, (pieces.text, whole.text)
