"""The training loop learns, checkpoints, resumes and exports a loadable model."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import render_line
from ocrcli.recognition.weights import load_model
from ocrcli.train.loop import TrainConfig, train


def _dataset(tmp_path, n=24):
    words = ["hello", "world", "ocr", "lines", "note", "cat", "dog", "tree"]
    rows = []
    rng = np.random.default_rng(0)
    for i in range(n):
        text = " ".join(rng.choice(words, 2))
        Image.fromarray(render_line(text, size=24)).save(tmp_path / f"l{i}.png")
        rows.append(f"l{i}.png\t{text}\tsynthetic")
    (tmp_path / "lines.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return tmp_path / "lines.tsv"


def _cfg(tsv, out, steps):
    return TrainConfig(train_tsvs=[tsv], val_tsv=tsv, out_dir=out, steps=steps, batch_size=8, val_every=10, val_limit=24,
                       height=16, channels=(8, 16, 16, 16, 16, 16), hidden=32, warmup=5, lr=3e-3, threads=1, augment_prob=0.0)


def test_train_resume_and_export(tmp_path):
    tsv = _dataset(tmp_path)
    out = tmp_path / "run"
    best = train(_cfg(tsv, out, 10))
    state = json.loads(__import__("torch").load(out / "checkpoint.pt", weights_only=True)["state"])
    assert state["step"] == 10
    train(_cfg(tsv, out, 20))  # same folder: resumes at step 10, runs to 20
    state = json.loads(__import__("torch").load(out / "checkpoint.pt", weights_only=True)["state"])
    assert state["step"] == 20
    log = (out / "log.csv").read_text().splitlines()
    assert log[0].startswith("step") and len(log) == 3
    losses = [float(row.split(",")[2]) for row in log[1:]]
    assert losses[1] < losses[0]  # it learns
    model, info = load_model(best)
    assert info.info["trained_steps"] in (10, 20) and model.spec.height == 16


def test_weight_averaging_is_the_mean_of_the_validated_weights_and_resumes(tmp_path):
    import torch

    tsv = _dataset(tmp_path)
    out = tmp_path / "run"
    cfg = _cfg(tsv, out, 20)
    cfg.val_every, cfg.average_from = 5, 10
    train(cfg)  # validations at 5, 10, 15, 20: the mean covers 10, 15 and 20
    first = torch.load(out / "checkpoint.pt", weights_only=True)
    assert int(first["average"]["n_averaged"]) == 3
    mean_before = {k: v.clone() for k, v in first["average"].items()}
    cfg.steps = 25
    train(cfg)  # resumes: one more validation joins the mean
    second = torch.load(out / "checkpoint.pt", weights_only=True)
    assert int(second["average"]["n_averaged"]) == 4
    name = next(k for k, v in first["model"].items() if v.is_floating_point() and k.endswith("weight"))
    expected = mean_before["module." + name] + (second["model"][name] - mean_before["module." + name]) / 4
    assert torch.allclose(second["average"]["module." + name], expected, atol=1e-6)
    assert not torch.allclose(second["average"]["module." + name], second["model"][name])
    model, info = load_model(out / "best.safetensors")  # whichever read best loads as a model
    assert model.spec.height == 16


def test_widened_lstm_reads_exactly_like_the_model_it_grew_from():
    import torch

    from ocrcli.recognition.model import CRNN, CRNNSpec
    from ocrcli.train.grow import widen_lstm

    torch.manual_seed(0)
    small = CRNN(CRNNSpec(num_classes=11, height=16, channels=(8, 16, 16, 16, 16, 16), hidden=12, layers=2)).eval()
    for p in small.parameters():  # not the init's small weights: every path must matter
        p.data.normal_(0, 0.5)
    grown = widen_lstm(small, 20).eval()
    assert grown.spec.hidden == 20 and grown.rnn.hidden_size == 20
    x = torch.rand(3, 1, 16, 40)
    with torch.no_grad():
        assert torch.allclose(grown(x), small(x), atol=1e-5)
        # and the new units are live: they change the output once their outgoing weights move
        grown.head[1].weight.normal_(0, 0.5)
        assert not torch.allclose(grown(x), small(x), atol=1e-3)
    with pytest.raises(ValueError):  # shrinking is refused
        widen_lstm(small, 8)


def test_training_from_a_model_can_widen_its_lstm(tmp_path):
    tsv = _dataset(tmp_path)
    best = train(_cfg(tsv, tmp_path / "small", 10))
    cfg = _cfg(tsv, tmp_path / "wide", 20)
    cfg.init_from, cfg.hidden, cfg.height, cfg.channels = best, 48, 40, (32,)  # shape comes from the file
    widened = train(cfg)
    model, _ = load_model(widened)
    assert model.spec.hidden == 48 and model.spec.height == 16 and model.spec.channels == (8, 16, 16, 16, 16, 16)


def test_lines_can_be_kept_taller_and_trained_on_the_rows_the_recognizer_reads(tmp_path, monkeypatch):
    import ocrcli.train.loop as loop

    tsv = _dataset(tmp_path)
    heights = []
    real_fit = loop.fit_rows
    monkeypatch.setattr(loop, "fit_rows", lambda gray: heights.append(gray.shape[0]) or real_fit(gray))
    cfg = _cfg(tsv, tmp_path / "whole", 10)
    train(cfg)
    assert len(heights) == 24  # whole lines: only the validation's 24 lines are fitted
    heights.clear()
    cfg = _cfg(tsv, tmp_path / "fitted", 10)
    cfg.store_height, cfg.fit_rows = 32, True
    best = train(cfg)
    # 10 steps of 8 training lines, then the 24 validation lines, all kept 32 px high
    assert len(heights) == 10 * 8 + 24 and set(heights) == {32}
    model, _ = load_model(best)
    assert model.spec.height == 16


def test_batches_made_by_worker_threads_train_the_same_weights(tmp_path):
    """--workers N: threads make the batches (distorted lines too), each from its own seed,
    so the run is the same whichever thread made them."""
    import torch

    tsv = _dataset(tmp_path)
    weights = []
    for workers in (0, 2):
        cfg = _cfg(tsv, tmp_path / f"w{workers}", 12)
        cfg.augment_prob, cfg.workers = 0.7, workers
        train(cfg)
        weights.append(torch.load(cfg.out_dir / "checkpoint.pt", weights_only=True)["model"])
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert (tmp_path / "w0" / "log.csv").read_text().splitlines()[1:] != []


def test_batches_are_made_in_order_by_any_number_of_threads(tmp_path):
    from ocrcli.train.data import load_lines
    from ocrcli.train.loop import made_batches
    from ocrcli.recognition.charset import DEFAULT_ALPHABET, Charset

    lines = load_lines(_dataset(tmp_path), Charset(DEFAULT_ALPHABET), 24)
    batches = [np.array([i, (i + 5) % 24, (i + 11) % 24]) for i in range(9)]
    seeds = np.arange(100, 109)
    runs = [list(made_batches(lines, batches, seeds, 2, workers, 0.8, True, 16)) for workers in (0, 1, 3)]
    assert [k for k, _, _ in runs[0]] == list(range(2, 9))
    for other in runs[1:]:
        assert [k for k, _, _ in other] == list(range(2, 9))
        for (_, a, ta), (_, b, tb) in zip(runs[0], other):
            assert ta == tb and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_cli_trains_a_new_network_of_the_shape_asked_for(tmp_path):
    from typer.testing import CliRunner

    from ocrcli.cli import app

    tsv = _dataset(tmp_path, n=8)
    common = ["train", "--train", str(tsv), "--val", str(tsv), "--steps", "2", "--batch-size", "4", "--device", "cpu"]
    bad = CliRunner().invoke(app, common + ["--out", str(tmp_path / "bad"), "--channels", "8,16"])
    assert bad.exit_code == 2 and "--channels" in bad.output
    ok = CliRunner().invoke(app, common + ["--out", str(tmp_path / "run"), "--height", "24", "--channels", "8,8,16,16,16,16",
                                           "--hidden", "16", "--workers", "1"])
    assert ok.exit_code == 0, ok.output
    model, _ = load_model(tmp_path / "run" / "best.safetensors")
    assert model.spec.height == 24 and model.spec.channels == (8, 8, 16, 16, 16, 16) and model.spec.hidden == 16
