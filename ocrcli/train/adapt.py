"""`ocr adapt`: learn one writer's hand from a few pages and their plain-text transcriptions.

    pages + transcripts -> segment each page -> read its lines with the base model
      -> align the transcript to the lines (train/align.py) -> keep the clearly aligned lines
      -> fine-tune the base model on them (augmented), a part held aside -> a normal model file
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ocrcli.config import RunConfig
from ocrcli.documents import BBox
from ocrcli.errors import InputError, OcrError
from ocrcli.inputs import InputFile
from ocrcli.metrics import ErrorCounter
from ocrcli.pages import iter_pages
from ocrcli.pipeline import add_interlinear, segment_page, split_merged
from ocrcli.recognition.charset import Charset
from ocrcli.recognition.decode import greedy_decode
from ocrcli.recognition.lineimage import normalize_line
from ocrcli.recognition.weights import ModelInfo, file_sha256, load_model, save_model
from ocrcli.segment import line_boxes
from ocrcli.train.align import AlignedLine, align_page
from ocrcli.train.augment import augment
from ocrcli.train.data import LineSample, bucketed_batches
from ocrcli.train.loop import evaluate, resolve_precision, train_step


@dataclass(frozen=True)
class AdaptConfig:
    steps: int | None = None  # None: about PASSES passes over the kept lines, within [MIN_STEPS, MAX_STEPS]
    batch_size: int = 16
    lr: float = 1e-3  # chosen by the held-out lines of the writer (peraire, 10 pages: 22.8% at 3e-4, 19.0% at 1e-3)
    holdout: float = 0.15  # share of the aligned lines kept aside to measure the writer's CER before/after
    augment_prob: float = 0.8
    seed: int = 0
    precision: str = "auto"
    max_cer: float = 0.8  # alignment: drop lines whose reading is further than this from their text (a safety net: the cut is decided by CTC)
    min_margin: float = 8.0  # alignment: drop lines whose cut is not this many nats better than the next


PASSES, MIN_STEPS, MAX_STEPS = 30, 100, 1500


@dataclass
class PageLines:
    """One transcribed input file: its lines (crops, model readings) and their alignment."""

    input: InputFile
    crops: list[np.ndarray] = field(default_factory=list)
    aligned: list[AlignedLine] = field(default_factory=list)
    boxes: list[tuple[int, BBox]] = field(default_factory=list)  # (page number, box in the input's pixels) per line


@dataclass
class AdaptReport:
    pages: int
    lines_found: int
    lines_kept: int
    train_lines: int
    holdout_lines: int
    steps: int
    seconds: float
    cer_before: float | None  # on the held-out lines
    cer_after: float | None
    dropped: dict[str, int]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def collect_lines(inputs: list[tuple[InputFile, str]], cfg: RunConfig, recognizer, adapt: AdaptConfig,
                  on_error: Callable[[str], None] = _log) -> list[PageLines]:
    """Segment every page, read its lines with ``recognizer`` and align its transcript to them.

    All pages of one input file share its transcript (lines in page order). A file that cannot be
    read is reported through ``on_error`` and left out.
    """
    charset = recognizer.charset
    out = []
    for f, transcript in inputs:
        crops: list[np.ndarray] = []
        boxes: list[tuple[int, BBox]] = []
        try:
            for page in iter_pages(f.path, cfg.dpi, cfg.preprocess.exif_orientation, lambda e: on_error(str(e))):
                prepared, found, page_crops = segment_page(page, cfg)
                # Tall lines cut in two where the halves read better, as `ocr recognize` does; words
                # between lines as lines of their own (all of them: those that match no transcript
                # line are left out by the alignment).
                found, page_crops, _ = split_merged(prepared, found, page_crops, None, recognizer)
                found, page_crops, _ = add_interlinear(prepared, found, page_crops, None, recognizer)
                crops += [c.image for c in page_crops]
                boxes += [(page.number, prepared.to_source(b)[0]) for b in line_boxes(found, page_crops, prepared.image.shape[0])]
        except InputError as exc:
            on_error(str(exc))
            continue
        frames = recognizer.log_probs(crops, fit=False)  # the segmenter chose their rows
        hyps = [charset.decode(greedy_decode(lp).labels) if lp is not None else "" for lp in frames]
        aligned = align_page(hyps, frames, transcript, charset, adapt.max_cer, adapt.min_margin)
        out.append(PageLines(f, crops, aligned, boxes))
    return out


def _sample(crop: np.ndarray, text: str, height: int, group: str) -> LineSample:
    h, w = crop.shape
    image = cv2.resize(crop, (max(8, round(w * height / h)), height), interpolation=cv2.INTER_AREA)
    return LineSample(image, text, group)


def split_lines(pages: list[PageLines], height: int, holdout: float, seed: int) -> tuple[list[LineSample], list[LineSample]]:
    """The kept lines as training samples, a seeded ``holdout`` share of them set aside."""
    samples = [_sample(p.crops[a.index], a.text, height, p.input.display) for p in pages for a in p.aligned if a.kept]
    random.Random(seed).shuffle(samples)
    k = round(len(samples) * holdout) if len(samples) >= 5 else 0
    return samples[k:], samples[:k]


def _lr(step: int, steps: int, peak: float, warmup: int = 20) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup))))


def fine_tune(model_path: Path, train: list[LineSample], holdout: list[LineSample], adapt: AdaptConfig,
              device: str = "cpu", log: Callable[[str], None] = _log):
    """Fine-tune a model file's weights on ``train``; returns (model, info, CER before, CER after, steps)."""
    torch.manual_seed(adapt.seed)
    model, info = load_model(model_path, device)
    charset = Charset(info.alphabet)
    spec = model.spec
    unknown = {ch for s in train for ch in charset.unknown(s.text)}
    if unknown:
        log(f"characters outside the model's charset, left out of the training texts: {''.join(sorted(unknown))!r}")
        train = [LineSample(s.image, "".join(ch for ch in s.text if ch not in unknown), s.group) for s in train]
    before = evaluate(model, charset, holdout, device, fit=False)["all"].cer if holdout else None
    steps = adapt.steps or min(MAX_STEPS, max(MIN_STEPS, round(PASSES * len(train) / adapt.batch_size)))
    precision = resolve_precision(adapt.precision, device)
    opt = torch.optim.AdamW(model.parameters(), lr=adapt.lr, weight_decay=1e-4)
    ctc = torch.nn.CTCLoss(zero_infinity=True)
    rng = np.random.default_rng(adapt.seed)
    widths = np.array([s.image.shape[1] for s in train])
    step, t0 = 0, time.time()
    while step < steps:
        for idx in bucketed_batches(widths, min(adapt.batch_size, len(train)), rng, pool=4):
            if step >= steps:
                break
            images = [normalize_line(augment(train[i].image, rng) if rng.random() < adapt.augment_prob else train[i].image, spec.height)
                      for i in idx]
            texts = [train[i].text for i in idx]
            for g in opt.param_groups:
                g["lr"] = _lr(step, steps, adapt.lr)
            loss = train_step(model, opt, ctc, charset, images, texts, device, precision)
            step += 1
            if step % 50 == 0 or step == steps:
                log(f"  step {step}/{steps} loss {loss:.3f} ({time.time() - t0:.0f} s)")
    after = evaluate(model, charset, holdout, device, fit=False)["all"].cer if holdout else None
    return model, info, before, after, steps


def adapt_model(inputs: list[tuple[InputFile, str]], base: Path, out: Path, cfg: RunConfig, recognizer,
                adapt: AdaptConfig, on_error: Callable[[str], None] = _log, log: Callable[[str], None] = _log) -> AdaptReport:
    """The whole of `ocr adapt`: align, fine-tune, write ``out``. Raises OcrError when no line aligns."""
    t0 = time.time()
    pages = collect_lines(inputs, cfg, recognizer, adapt, on_error)
    found = sum(len(p.aligned) for p in pages)
    dropped: dict[str, int] = {}
    for p in pages:
        for a in p.aligned:
            if not a.kept:
                key = a.reason.split(" (")[0]
                dropped[key] = dropped.get(key, 0) + 1
    train, holdout = split_lines(pages, recognizer.model.spec.height, adapt.holdout, adapt.seed)
    kept = len(train) + len(holdout)
    log(f"{len(pages)} pages: {found} lines found, {kept} aligned with their text"
        + (f" (dropped: {', '.join(f'{k} x{v}' for k, v in dropped.items())})" if dropped else ""))
    if not train:
        raise OcrError("no line could be aligned with its transcription: nothing to learn from",
                       hint="check that each page's .txt is the text of that page")
    model, info, before, after, steps = fine_tune(base, train, holdout, adapt, recognizer.device, log)
    meta = {k: v for k, v in info.info.items() if not k.startswith("val_")}  # the base's val CER says nothing of this model
    meta.update({
        "adapted_from": {"model": base.name, "sha256": file_sha256(base), "val_cer": info.info.get("val_cer")},
        "adapt_pages": len(pages), "adapt_lines": len(train), "adapt_holdout_lines": len(holdout), "adapt_steps": steps,
        "adapt_holdout_cer_before": None if before is None else round(before, 4),
        "adapt_holdout_cer_after": None if after is None else round(after, 4),
        "adapt_seconds": round(time.time() - t0), "torch": torch.__version__,
    })
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(out, model.state_dict(), ModelInfo(info.alphabet, info.spec, info.normalization, meta))
    return AdaptReport(len(pages), found, kept, len(train), len(holdout), steps, time.time() - t0, before, after, dropped)


def counter_for(model_path: Path, samples: list[LineSample], device: str = "cpu") -> ErrorCounter:
    """CER/WER of a model file on line samples cut by the page segmenter (used by the adaptation
    experiment)."""
    model, info = load_model(model_path, device)
    return evaluate(model, Charset(info.alphabet), samples, device, fit=False)["all"]
