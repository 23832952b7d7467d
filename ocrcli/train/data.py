"""Line datasets for training: TSV loading, in-memory cache, width-bucketed batches."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ocrcli.recognition.charset import Charset, normalize_text


@dataclass
class LineSample:
    image: np.ndarray  # uint8 grayscale, dark ink on light paper, stored at a fixed height
    text: str
    group: str  # the set name (third TSV column) or the TSV's stem


def read_tsv(path: Path) -> list[tuple[Path, str, str]]:
    """Rows of ``path<TAB>text[<TAB>set]``; image paths are relative to the TSV's folder."""
    path = Path(path)
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, raw in enumerate(fh, 1):
            raw = raw.rstrip("\n")
            if not raw.strip():
                continue
            parts = raw.split("\t")
            if len(parts) < 2:
                raise ValueError(f"{path}:{n}: expected 'path<TAB>text', got {raw[:60]!r}")
            group = parts[2] if len(parts) > 2 and parts[2] else path.stem
            rows.append((path.parent / parts[0], normalize_text(parts[1]), group))
    return rows


def load_lines(tsv: Path, charset: Charset, height: int, limit: int | None = None,
               log=lambda s: print(s, file=sys.stderr)) -> list[LineSample]:
    """Decode every line image of a TSV at ``height`` px; report (not drop silently) unknown characters."""
    rows = read_tsv(tsv)[:limit] if limit else read_tsv(tsv)
    samples, unknown = [], {}
    for image_path, text, group in rows:
        bad = charset.unknown(text)
        if bad:
            for ch in bad:
                unknown[ch] = unknown.get(ch, 0) + 1
            continue
        gray = cv2.imread(str(image_path), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            log(f"{image_path}: unreadable image, skipped")
            continue
        h, w = gray.shape
        gray = cv2.resize(gray, (max(8, round(w * height / h)), height), interpolation=cv2.INTER_AREA)
        samples.append(LineSample(gray, text, group))
    if unknown:
        log(f"{tsv}: skipped lines with characters outside the charset: "
            + ", ".join(f"{ch!r} x{n}" for ch, n in sorted(unknown.items(), key=lambda x: -x[1])))
    return samples


def bucketed_batches(widths: np.ndarray, batch_size: int, rng: np.random.Generator, pool: int = 50) -> list[np.ndarray]:
    """Shuffle, then sort within pools of ``pool`` batches by width so batches need little padding."""
    order = rng.permutation(len(widths))
    batches = []
    span = batch_size * pool
    for start in range(0, len(order), span):
        chunk = order[start:start + span]
        chunk = chunk[np.argsort(widths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(images: list[np.ndarray], stride: int):
    """Stack normalised (H, W_i) float arrays into a zero-padded (N, 1, H, W) batch and widths."""
    import torch

    h = images[0].shape[0]
    w = max(im.shape[1] for im in images)
    w = -(-w // stride) * stride
    batch = np.zeros((len(images), 1, h, w), np.float32)
    for i, im in enumerate(images):
        batch[i, 0, :, : im.shape[1]] = im
    return torch.from_numpy(batch), torch.tensor([im.shape[1] for im in images])
