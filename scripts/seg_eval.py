"""Quick line-segmentation check on ../shared/data/pages.jsonl (a precursor of `ocr eval --pages`).

usage: python scripts/seg_eval.py ["dict(deskew=False)"]   (optional PreprocessConfig overrides)

For each set: recall (reference lines whose box is matched by a found line with IoU >= 0.5),
precision (found lines that match a reference line), and the seconds spent.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ocrcli.config import PreprocessConfig  # noqa: E402
from ocrcli.pages import iter_pages  # noqa: E402
from ocrcli.preprocess import preprocess  # noqa: E402
from ocrcli.pipeline import cut_lines  # noqa: E402
from ocrcli.segment import line_boxes  # noqa: E402


def iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def main() -> None:
    data = ROOT.parent / "shared" / "data"
    overrides = eval(sys.argv[1], {"dict": dict}) if len(sys.argv) > 1 else {}  # noqa: S307 - a developer's own argument
    cfg = PreprocessConfig(**overrides)
    stats: dict[str, list[float]] = {}
    for raw in open(data / "pages.jsonl", encoding="utf-8"):
        page_ref = json.loads(raw)
        started = time.perf_counter()
        page = preprocess(next(iter_pages(data / page_ref["image"])), cfg)
        found = [page.to_source(b)[0].to_list() for b in line_boxes(*cut_lines(page), page.image.shape[0])]
        refs = []
        for line in page_ref["lines"]:
            pts = np.array(line["polygon"])
            refs.append([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()])
        s = stats.setdefault(page_ref["set"], [0, 0, 0, 0, 0.0])
        s[0] += sum(1 for r in refs if any(iou(r, f) >= 0.5 for f in found))
        s[1] += len(refs)
        s[2] += sum(1 for f in found if any(iou(r, f) >= 0.5 for r in refs))
        s[3] += len(found)
        s[4] += time.perf_counter() - started
    print("| set | reference lines | found | recall | precision | seconds |")
    print("|---|---|---|---|---|---|")
    for name, (hit, n_ref, good, n_found, secs) in sorted(stats.items()):
        print(f"| {name} | {n_ref} | {n_found} | {hit / n_ref:.3f} | {good / max(n_found, 1):.3f} | {secs:.1f} |")


if __name__ == "__main__":
    main()
