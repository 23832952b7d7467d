"""Where a page's errors come from: line finding, line crops or reading order.

usage: python scripts/page_oracle.py [PAGES_JSONL]   (default ../shared/data/pages.jsonl)

Reads every page three ways with the shipped model and prints page CER per set:
  pipeline   the whole pipeline, as `ocr eval --pages` does (found lines, our order);
  ref-order  the reference lines' boxes (mapped into the preprocessed page) cut by our
             `line_crops`, in the reference's order: the page CER with perfect line finding;
  top-down   the same crops read top to bottom by box centre: what perfect boxes give with a
             plain reading order (the reference's order is not always top to bottom: lines
             written between the lines, margin notes);
  our-order  the same crops in the pipeline's reading order (segment.reading_order: columns
             between long vertical rules, a register's header first).
The gap pipeline -> ref-order is what line finding costs; ref-order against the line CER of
`ocr eval --pages` is what the crops cost.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ocrcli.config import RunConfig  # noqa: E402
from ocrcli.documents import BBox, Line, Page  # noqa: E402
from ocrcli.evaluate import page_text  # noqa: E402
from ocrcli.metrics import ErrorCounter  # noqa: E402
from ocrcli.pages import iter_pages  # noqa: E402
from ocrcli.pipeline import recognize_page  # noqa: E402
from ocrcli.preprocess import preprocess, text_height  # noqa: E402
from ocrcli.recognition.engine import Recognizer  # noqa: E402
from ocrcli.segment import line_crops, reading_order, text_ink  # noqa: E402


def reference_lines(record: dict, prepared: Page) -> tuple[list[Line], list[str]]:
    """The reference lines that have a text, as boxes of the preprocessed page, with their texts."""
    height, width = prepared.image.shape[:2]
    lines, texts = [], []
    for line in record["lines"]:
        if not line.get("text"):
            continue
        pts = np.array(line["polygon"], float)
        mapped = prepared.to_page(pts)
        x0, y0 = max(0, int(mapped[:, 0].min())), max(0, int(mapped[:, 1].min()))
        x1, y1 = min(width, int(mapped[:, 0].max()) + 1), min(height, int(mapped[:, 1].max()) + 1)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            lines.append(Line(BBox(x0, y0, x1, y1)))
            texts.append(line["text"])
    return lines, texts


def main() -> None:
    jsonl = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "pages.jsonl"
    records = [json.loads(raw) for raw in jsonl.read_text(encoding="utf-8").splitlines() if raw.strip()]
    recognizer = Recognizer(None, "cpu")
    cfg = RunConfig()
    counts: dict[str, dict[str, ErrorCounter]] = defaultdict(lambda: defaultdict(ErrorCounter))
    for record in records:
        page = next(iter_pages(jsonl.parent / record["image"]))
        reference = page_text([line["text"] for line in record["lines"] if line.get("text")])
        found = page_text([line.text for line in recognize_page(page, cfg, recognizer).lines])
        prepared = preprocess(page, cfg.preprocess)
        lines, _ = reference_lines(record, prepared)
        read = [t.text for t in recognizer.recognize([c.image for c in line_crops(prepared, lines)])]
        order = sorted(range(len(lines)), key=lambda k: lines[k].bbox.y0 + lines[k].bbox.y1)
        boxes = [line.bbox.to_list() for line in lines]  # reading_order returns these same lists, reordered
        ours = list(range(len(lines)))
        letter = text_height(prepared.ink) if prepared.ink is not None and prepared.ink.any() else None
        if letter is not None:
            where = {id(b): k for k, b in enumerate(boxes)}
            ours = [where[id(b)] for b in reading_order(boxes, text_ink(prepared.ink, letter), letter)]
        for name in (record["set"], "all"):
            counts[name]["pipeline"].add(found, reference)
            counts[name]["ref-order"].add(page_text(read), reference)
            counts[name]["top-down"].add(page_text([read[k] for k in order]), reference)
            counts[name]["our-order"].add(page_text([read[k] for k in ours]), reference)
    print(f"{'set':10s} {'pipeline':>9s} {'ref-order':>9s} {'top-down':>9s} {'our-order':>9s}   (page CER)")
    for name in sorted(counts, key=lambda n: (n == "all", n)):
        row = counts[name]
        print(f"{name:10s} {100 * row['pipeline'].cer:8.2f}% {100 * row['ref-order'].cer:8.2f}% {100 * row['top-down'].cer:8.2f}%"
              f" {100 * row['our-order'].cer:8.2f}%")


if __name__ == "__main__":
    main()
