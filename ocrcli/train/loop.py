"""The training loop: resumable, validated every N steps, keeps the best weights by validation CER."""

from __future__ import annotations

import csv
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ocrcli.errors import ModelError, UsageError
from ocrcli.metrics import ErrorCounter
from ocrcli.recognition.charset import DEFAULT_ALPHABET, Charset
from ocrcli.recognition.decode import greedy_decode
from ocrcli.recognition.lineimage import fit_rows, normalize_line
from ocrcli.recognition.model import CRNN, CRNNSpec
from ocrcli.recognition.weights import ModelInfo, save_model
from ocrcli.runtime import cpu_has_bf16
from ocrcli.train.augment import augment
from ocrcli.train.data import LineSample, bucketed_batches, collate, load_lines


@dataclass
class TrainConfig:
    train_tsvs: list[Path]
    val_tsv: Path
    out_dir: Path
    fonts_dir: Path | None = None
    synth_fraction: float = 0.1
    steps: int = 10000
    batch_size: int = 24
    lr: float = 1e-3
    warmup: int = 300
    val_every: int = 500
    val_limit: int = 600
    patience: int = 8  # validations without improvement before stopping early
    height: int = 40
    channels: tuple[int, ...] = (32, 64, 96, 128, 160, 192)
    hidden: int | None = None  # LSTM units each way; None: 256, or the init_from model's
    augment_prob: float = 0.6
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    max_minutes: float | None = None
    init_from: Path | None = None  # start from a model file's weights (fine-tuning)
    precision: str = "auto"  # "fp32", "bf16" (autocast; weights stay fp32) or "auto"
    average_from: int | None = None  # from this step on, also validate the mean of the weights at each validation
    # Real lines are kept in memory this many px high (None: the network's height), so that an
    # augmented or trimmed line is resampled once, as at inference, not twice.
    store_height: int | None = None
    fit_rows: bool = False  # train on the rows the recognizer reads (fit_rows after augmentation)
    workers: int = 0  # threads that make batches ahead of the training steps (0: the training thread)
    notes: dict = field(default_factory=dict)


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))


def resolve_precision(precision: str, device: str) -> str:
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be auto, fp32 or bf16, not {precision!r}")
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_bf16() else "fp32"


def stratified(samples: list, limit: int, seed: int, group=lambda s: s.group) -> list:
    """A fixed subset with every group represented in proportion (at least 30 lines each)."""
    if len(samples) <= limit:
        return samples
    rng = random.Random(seed)
    groups: dict[str, list] = {}
    for s in samples:
        groups.setdefault(group(s), []).append(s)
    out = []
    for g in sorted(groups):
        members = groups[g]
        k = max(30, round(limit * len(members) / len(samples)))
        out += rng.sample(members, min(k, len(members)))
    return out


@torch.inference_mode()
def evaluate(model: CRNN, charset: Charset, samples: list[LineSample], device: str, batch_size: int = 32,
             fit: bool = True) -> dict[str, ErrorCounter]:
    """CER/WER per group and overall ('all') with greedy decoding, the lines' rows chosen as the
    recognizer chooses them (``fit``: by ``fit_rows``; False for the page segmenter's crops)."""
    model.eval()
    counters: dict[str, ErrorCounter] = {"all": ErrorCounter()}
    order = sorted(range(len(samples)), key=lambda i: samples[i].image.shape[1])
    stride = model.spec.width_stride
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        images = [normalize_line(fit_rows(samples[i].image) if fit else samples[i].image, model.spec.height) for i in idx]
        x, widths = collate(images, stride)
        out = model(x.to(device)).float().cpu()
        lengths = model.output_lengths(widths)
        for j, i in enumerate(idx):
            text = charset.decode(greedy_decode(out[: lengths[j], j].numpy()).labels)
            for key in ("all", samples[i].group):
                counters.setdefault(key, ErrorCounter()).add(text, samples[i].text)
    return counters


def make_batch(lines: list[LineSample], batch_idx: np.ndarray, seed: int, augment_prob: float, fit: bool,
               height: int) -> tuple[list[np.ndarray], list[str]]:
    """One batch's normalised line images and texts: each line distorted (with probability
    ``augment_prob``), trimmed to the rows the recognizer reads (``fit``) and resampled to
    ``height``. All the batch's randomness comes from ``seed``, so whichever thread makes it, it
    comes out the same."""
    rng = np.random.default_rng(seed)
    images, texts = [], []
    for i in batch_idx:
        s = lines[i]
        img = augment(s.image, rng) if rng.random() < augment_prob else s.image
        if fit:
            img = fit_rows(img)
        images.append(normalize_line(img, height))
        texts.append(s.text)
    return images, texts


def made_batches(lines: list[LineSample], batches: list[np.ndarray], seeds: np.ndarray, start: int, workers: int,
                 augment_prob: float, fit: bool, height: int):
    """(k, images, texts) for batches[start:], in order: made here, or by ``workers`` threads at
    most two batches each ahead of the consumer (on a GPU the steps outrun one thread making
    batches; on 2 CPU cores the steps are the slow part). OpenCV and numpy, which do the work,
    release the GIL; threads, not forked processes, because a process forked from one running
    torch's threads can hang on a lock one of them held (it did, in a test). Closing the
    generator waits for the batches under way and stops."""
    if workers < 1:
        for k in range(start, len(batches)):
            yield (k, *make_batch(lines, batches[k], int(seeds[k]), augment_prob, fit, height))
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers, thread_name_prefix="ocrcli-batches") as pool:
        pending: list = []
        queued = start
        try:
            for k in range(start, len(batches)):
                while queued < len(batches) and queued < k + 2 * workers:
                    pending.append(pool.submit(make_batch, lines, batches[queued], int(seeds[queued]), augment_prob, fit, height))
                    queued += 1
                yield (k, *pending.pop(0).result())
        finally:
            for future in pending:
                future.cancel()


def train_step(model: CRNN, opt, ctc, charset: Charset, images: list[np.ndarray], texts: list[str],
               device: str, precision: str) -> float:
    """One optimisation step on a batch of normalised line images; returns the CTC loss."""
    model.train()
    x, w = collate(images, model.spec.width_stride)
    targets = torch.tensor([k for t in texts for k in charset.encode(t)], dtype=torch.long)
    target_lengths = torch.tensor([len(t) for t in texts], dtype=torch.long)
    with torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        out = model(x.to(device))
    # CTC in fp32 (on the CPU for CUDA runs: its loss is deterministic there).
    loss = ctc(out.float().cpu(), targets, model.output_lengths(w), target_lengths)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    return loss.item()


def train(cfg: TrainConfig) -> Path:
    """Train (or resume) and return the path of the best model file."""
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    import cv2

    cv2.setNumThreads(1)
    torch.set_flush_denormal(True)  # denormal floats make CPU training crawl as weights shrink  # OpenCV's own pool would fight torch's for the same cores
    torch.manual_seed(cfg.seed)
    precision = resolve_precision(cfg.precision, cfg.device)
    charset = Charset(DEFAULT_ALPHABET)
    if cfg.init_from:
        from ocrcli.recognition.weights import read_metadata

        base_info = read_metadata(cfg.init_from)
        if base_info.alphabet != charset.alphabet:
            raise ModelError(f"{cfg.init_from}: its charset differs from this ocrcli's; it cannot be trained further")
        # The network's shape comes from the file; only the LSTM may grow (train/grow.py).
        base_spec = CRNNSpec.from_dict(base_info.spec)
        spec = replace(base_spec, hidden=cfg.hidden or base_spec.hidden)
        if spec.hidden < base_spec.hidden:
            raise UsageError(f"--hidden {spec.hidden}: {cfg.init_from} has {base_spec.hidden} LSTM units; a model can grow, not shrink")
    else:
        spec = CRNNSpec(num_classes=charset.num_classes, height=cfg.height, channels=cfg.channels, hidden=cfg.hidden or 256)
    model = CRNN(spec).to(cfg.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    ctc = torch.nn.CTCLoss(zero_infinity=True)
    state = {"step": 0, "best_cer": float("inf"), "bad_evals": 0, "seconds": 0.0, "lines_seen": 0}
    # Stochastic weight averaging: the mean of the weights (batch-norm statistics included) at every
    # validation from cfg.average_from on. While the learning rate is high it reads better than any
    # of them (on this data 5 snapshots 500 steps apart: 24.2% val subset CER, the snapshots
    # 24.9-25.6%); at the end of a cosine decay it only matched the best snapshot (23.53 vs 23.52%).
    average = torch.optim.swa_utils.AveragedModel(model, use_buffers=True) if cfg.average_from is not None else None
    ckpt = cfg.out_dir / "checkpoint.pt"
    if ckpt.exists():
        saved = torch.load(ckpt, map_location="cpu", weights_only=True)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        state.update(json.loads(saved["state"]))
        if average is not None and "average" in saved:
            average.load_state_dict(saved["average"])
        _log(f"resumed from {ckpt} at step {state['step']} (best val CER {state['best_cer']:.4f})")
    elif cfg.init_from:
        from ocrcli.recognition.weights import load_model
        from ocrcli.train.grow import widen_lstm

        base, _ = load_model(cfg.init_from)
        model.load_state_dict(widen_lstm(base, spec.hidden, cfg.seed).state_dict())
        grown = f" (LSTM widened from {base.spec.hidden} to {spec.hidden} units, same outputs)" if spec.hidden != base.spec.hidden else ""
        _log(f"initialised from {cfg.init_from}{grown}")

    _log("loading lines...")
    stored = cfg.store_height or spec.height
    train_samples: list[LineSample] = []
    for tsv in cfg.train_tsvs:
        train_samples += load_lines(tsv, charset, stored)
    val_samples = stratified(load_lines(cfg.val_tsv, charset, stored), cfg.val_limit, cfg.seed)
    _log(f"{len(train_samples)} training lines, {len(val_samples)} validation lines, "
         f"{sum(p.numel() for p in model.parameters())/1e6:.2f}M parameters, {precision} on {cfg.device}")

    synth = None
    if cfg.fonts_dir and cfg.synth_fraction > 0:
        from ocrcli.train.synth import SynthPool

        # Synthetic lines live in the same list as real ones, so width bucketing covers both.
        pool_size = round(len(train_samples) * cfg.synth_fraction / (1 - cfg.synth_fraction))
        synth = SynthPool(cfg.fonts_dir, charset, spec.height, pool_size, cfg.seed + state["step"])
        _log(f"rendering {pool_size} synthetic lines...")
        first_synth = len(train_samples)
        train_samples += synth.render(pool_size)

    rng = np.random.default_rng(cfg.seed + state["step"])
    widths = np.array([s.image.shape[1] for s in train_samples])
    log_path = cfg.out_dir / "log.csv"
    new_log = not log_path.exists()
    log_fh = open(log_path, "a", newline="")
    log = csv.writer(log_fh)
    if new_log:
        log.writerow(["step", "lr", "train_loss", "val_cer", "val_wer", "lines_per_s", "elapsed_s"])
    started = time.time()
    seconds_before = state["seconds"]
    losses: list[float] = []
    t_window, lines_window = time.time(), 0
    best_path = cfg.out_dir / "best.safetensors"
    stop = False
    batches: list[np.ndarray] = []
    seeds = np.zeros(0, np.int64)
    start = 0  # the next batch of the epoch
    while not stop and state["step"] < cfg.steps:
        if start >= len(batches):  # a new epoch: its batches, and a seed for each
            batches = bucketed_batches(widths, cfg.batch_size, rng)
            seeds = rng.integers(0, 2**63 - 1, len(batches))
            start = 0
        making = made_batches(train_samples, batches, seeds, start, cfg.workers, cfg.augment_prob, cfg.fit_rows, spec.height)
        start = len(batches)
        for k, images, texts in making:
            step = state["step"]
            for g in opt.param_groups:
                g["lr"] = _lr_at(step, cfg)
            losses.append(train_step(model, opt, ctc, charset, images, texts, cfg.device, precision))
            state["step"] = step + 1
            state["lines_seen"] += len(texts)
            lines_window += len(texts)
            if state["step"] % 50 == 0:
                rate = lines_window / (time.time() - t_window)
                _log(f"step {state['step']} loss {np.mean(losses[-50:]):.3f} lr {_lr_at(step, cfg):.2e} {rate:.1f} lines/s")
                t_window, lines_window = time.time(), 0
            out_of_time = cfg.max_minutes is not None and (time.time() - started) > cfg.max_minutes * 60
            if state["step"] % cfg.val_every == 0 or state["step"] >= cfg.steps or out_of_time:
                counters = evaluate(model, charset, val_samples, cfg.device)
                cer = counters["all"].cer
                state["seconds"] = seconds_before + time.time() - started
                per_group = " ".join(f"{k}={v.cer:.3f}" for k, v in sorted(counters.items()) if k != "all")
                _log(f"step {state['step']} val CER {cer:.4f} WER {counters['all'].wer:.4f} ({per_group})")
                log.writerow([state["step"], f"{_lr_at(step, cfg):.2e}", f"{np.mean(losses[-cfg.val_every:]):.4f}",
                              f"{cer:.4f}", f"{counters['all'].wer:.4f}", f"{state['lines_seen']/max(state['seconds'],1):.1f}", f"{state['seconds']:.0f}"])
                log_fh.flush()
                candidates = [(cer, model, {})]
                if average is not None and state["step"] >= cfg.average_from:
                    average.update_parameters(model)
                    n = int(average.n_averaged)
                    avg_cer = evaluate(average.module, charset, val_samples, cfg.device)["all"].cer
                    _log(f"step {state['step']} mean of the last {n} validations' weights: val CER {avg_cer:.4f}")
                    candidates.append((avg_cer, average.module, {"averaged_weights": n, "averaged_until_step": state["step"]}))
                best_cer, best_model, extra = min(candidates, key=lambda c: c[0])
                if best_cer < state["best_cer"]:
                    state["best_cer"], state["bad_evals"] = best_cer, 0
                    info = ModelInfo(alphabet=charset.alphabet, spec=spec.to_dict(), info={
                        "trained_steps": state["step"], "lines_seen": state["lines_seen"],
                        "train_seconds": round(state["seconds"]), "val_subset_cer": round(best_cer, 4), **extra,
                        "train_data": [str(p) for p in cfg.train_tsvs], "synthetic_fraction": cfg.synth_fraction if synth else 0.0,
                        "device": cfg.device, "precision": precision, "torch": torch.__version__, **cfg.notes})
                    save_model(best_path, best_model.state_dict(), info)
                    _log(f"new best -> {best_path}")
                else:
                    state["bad_evals"] += 1
                tmp = ckpt.with_suffix(".tmp")
                saved = {"model": model.state_dict(), "optimizer": opt.state_dict(), "state": json.dumps(state)}
                if average is not None:
                    saved["average"] = average.state_dict()
                torch.save(saved, tmp)
                tmp.replace(ckpt)
                if synth:  # replace a fifth of the synthetic lines with fresh ones
                    n_synth = len(train_samples) - first_synth
                    at = first_synth + int(rng.integers(0, max(1, n_synth - n_synth // 5)))
                    fresh = synth.render(n_synth // 5)
                    train_samples[at:at + len(fresh)] = fresh
                    widths[at:at + len(fresh)] = [s.image.shape[1] for s in fresh]
                    start = k + 1  # the epoch's next batches are made from the new lines
                if state["bad_evals"] >= cfg.patience:
                    _log(f"no improvement in {cfg.patience} validations: stopping early")
                    stop = True
                    break
                if out_of_time:
                    _log("time limit reached: checkpoint saved, run again to resume")
                    stop = True
                    break
                if synth:
                    break
            if state["step"] >= cfg.steps:  # before the next batch is made
                break
        making.close()
    log_fh.close()
    return best_path
