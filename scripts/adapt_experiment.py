"""Issue 9's measurement: adapt a base model that never saw the peraire writer to that writer.

    python scripts/adapt_experiment.py BASE.safetensors [--pages 5 10 20] [--out runs/adapt]

Peraire "pages" are stacks of 25 consecutive real training lines of the set (as in the issue), each
with one transcription: the reference lines joined by spaces, line breaks removed. For 5, 10 and 20
such pages, `ocr adapt`'s own code (segmentation, alignment, fine-tuning) makes a model; the table
gives the alignment's kept and wrongly cut lines (checked against the reference lines, matched to
the found lines by position) and the CER on peraire's validation lines before and after.
Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ocrcli.config import RecognizeConfig, RunConfig
from ocrcli.inputs import InputFile
from ocrcli.recognition.charset import Charset, normalize_text
from ocrcli.recognition.engine import Recognizer
from ocrcli.train.adapt import AdaptConfig, adapt_model, collect_lines, counter_for
from ocrcli.train.data import load_lines, read_tsv

DATA = ROOT.parent / "shared" / "data"
LINES_PER_PAGE = 25


def build_pages(folder: Path, count: int) -> list[tuple[InputFile, str, list[tuple[list[int], str]]]]:
    """Stack peraire training lines into page images; returns (input, transcript, [(box, text)])."""
    rows = [(p, t) for p, t, g in read_tsv(DATA / "train.tsv") if g == "peraire"]
    folder.mkdir(parents=True, exist_ok=True)
    pages = []
    for k in range(count):
        chunk = rows[k * LINES_PER_PAGE:(k + 1) * LINES_PER_PAGE]
        images = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p, _ in chunk]
        paper = int(np.median([np.median(np.concatenate([im[0], im[-1], im[:, 0], im[:, -1]])) for im in images]))
        gap = int(0.2 * np.median([im.shape[0] for im in images]))
        margin = 60
        height = 2 * margin + sum(im.shape[0] for im in images) + gap * (len(images) - 1)
        width = 2 * margin + max(im.shape[1] for im in images)
        page = np.full((height, width), paper, np.uint8)
        y, refs = margin, []
        for im, (_, text) in zip(images, chunk):
            page[y:y + im.shape[0], margin:margin + im.shape[1]] = im
            refs.append(([margin, y, margin + im.shape[1], y + im.shape[0]], normalize_text(text)))
            y += im.shape[0] + gap
        path = folder / f"peraire-page{k:02d}.png"
        cv2.imwrite(str(path), page)
        pages.append((InputFile(path, str(path), Path(path.name)), " ".join(t for _, t in refs), refs))
    return pages


def alignment_stats(pages, built) -> tuple[int, int, int, int]:
    """(reference lines, kept lines right, kept lines that are a word-aligned piece of their line,
    kept lines wrongly cut).

    A found line's reference is the stacked line image its box's vertical centre falls in (the
    images do not overlap; their boxes include paper around short lines, so IoU would understate).
    "Right": the text is the reference line's. "Piece": the segmenter cut one line into two boxes
    side by side and each got the words of its part (right for training, but not a whole line).
    """
    total = right = piece = wrong = 0
    for got, (_, _, refs) in zip(pages, built):
        total += len(refs)
        for a in got.aligned:
            if not a.kept:
                continue
            box = got.boxes[a.index][1]
            centre = (box.y0 + box.y1) / 2
            ref = next((text for (x0, y0, x1, y1), text in refs if y0 <= centre < y1), None)
            if ref is not None and a.text == ref:
                right += 1
            elif ref is not None and a.text and f" {a.text} " in f" {ref} ":
                piece += 1
            else:
                wrong += 1
    return total, right, piece, wrong


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", type=Path)
    ap.add_argument("--pages", type=int, nargs="+", default=[5, 10, 20])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "adapt")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=None, help="fine-tuning steps (default: adapt's own choice)")
    ap.add_argument("--lr", type=float, default=AdaptConfig.lr, help="fine-tuning peak learning rate")
    args = ap.parse_args()
    built = build_pages(args.out / "pages", max(args.pages))
    recognizer = Recognizer(args.base, args.device)
    charset = Charset(recognizer.info.alphabet)
    val = [s for s in load_lines(DATA / "val.tsv", charset, recognizer.model.spec.height) if s.group == "peraire"]
    before = counter_for(args.base, val, args.device)
    print(f"base {args.base.name}: CER {100 * before.cer:.2f}% on {len(val)} peraire val lines", flush=True)
    cfg = RunConfig(recognize=RecognizeConfig(model_path=args.base, device=args.device))
    rows = []
    for n in args.pages:
        inputs = [(f, text) for f, text, _ in built[:n]]
        t = time.time()
        settings = AdaptConfig(steps=args.steps, lr=args.lr)
        pages = collect_lines(inputs, cfg, recognizer, settings)
        total, right, piece, wrong = alignment_stats(pages, built[:n])
        right += piece
        out = args.out / f"peraire-{n}p.safetensors"
        report = adapt_model(inputs, args.base, out, cfg, recognizer, settings)
        after = counter_for(out, val, args.device)
        rows.append((n, total, right + wrong, piece, wrong, report.train_lines, report.steps, time.time() - t, after.cer))
        print(f"  adapt's own held-out lines ({report.holdout_lines}): CER {100 * report.cer_before:.2f}% -> {100 * report.cer_after:.2f}%")
        print(f"{n} pages: {right + wrong}/{total} lines kept ({100 * (right + wrong) / total:.1f}%), {piece} pieces of a line, {wrong} wrongly cut; "
              f"trained on {report.train_lines} lines, {report.steps} steps, {time.time() - t:.0f} s; "
              f"peraire val CER {100 * before.cer:.2f}% -> {100 * after.cer:.2f}%", flush=True)
    print("\n| pages | reference lines | kept | of which pieces | wrongly cut | train lines | steps | time | peraire val CER before | after | errors removed |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n, total, kept, piece, wrong, train, steps, secs, cer in rows:
        print(f"| {n} | {total} | {kept} ({100 * kept / total:.1f}%) | {piece} | {wrong} ({100 * wrong / max(kept, 1):.2f}%) | {train} | {steps} | "
              f"{secs:.0f} s | {100 * before.cer:.2f}% | {100 * cer:.2f}% | {100 * (1 - cer / before.cer):.0f}% |")


if __name__ == "__main__":
    main()
