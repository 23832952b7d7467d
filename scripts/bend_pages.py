"""Make a set of pages with bent lines from a pages.jsonl, to measure the page path on them.

Each chosen page's columns are moved up or down, as the lines of a sheet photographed bent: a bow
(column x moved by --amount x height x sin(pi x / width)) or a curl into a spine on the left
(--amount x height x (1 - x / width) ** 3), downwards on even pages and upwards on odd ones. The
reference line polygons are moved with the page (their edges traced through more points, since
they become curves), so the output is a pages.jsonl of its own, and the same pages unbent are
listed in flat.jsonl beside it, to compare:

    python scripts/bend_pages.py ../shared/data/pages.jsonl bent/ --every 3 --amount 0.02
    ocr eval --pages bent/pages.jsonl
    ocr eval --pages bent/flat.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

EDGE_POINTS = 12  # points traced along each edge of a reference polygon


def shifts(x: np.ndarray, width: int, height: int, amount: float, shape: str) -> np.ndarray:
    """How far down column ``x`` moves."""
    across = np.asarray(x, np.float64) / width
    curve = np.sin(np.pi * across) if shape == "bow" else (1 - across) ** 3
    return amount * height * curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pages", type=Path, help="pages.jsonl (image paths relative to its folder)")
    ap.add_argument("out", type=Path, help="folder for the bent pages, their pages.jsonl and flat.jsonl")
    ap.add_argument("--every", type=int, default=3, help="take every N-th page")
    ap.add_argument("--offset", type=int, default=0, help="start at this page")
    ap.add_argument("--amount", type=float, default=0.02, help="the largest move, a share of the page's height")
    ap.add_argument("--shape", choices=("bow", "spine"), default="bow")
    args = ap.parse_args()
    records = [json.loads(line) for line in args.pages.read_text(encoding="utf-8").splitlines() if line.strip()]
    chosen = records[args.offset::args.every]
    args.out.mkdir(parents=True, exist_ok=True)
    out = []
    for n, record in enumerate(chosen):
        page = cv2.imread(str(args.pages.parent / record["image"]), cv2.IMREAD_GRAYSCALE)
        h, w = page.shape
        amount = args.amount if n % 2 == 0 else -args.amount
        dy = shifts(np.arange(w), w, h, amount, args.shape).astype(np.float32)
        xs = np.tile(np.arange(w, dtype=np.float32), (h, 1))
        bent = cv2.remap(page, xs, np.arange(h, dtype=np.float32)[:, None] - dy[None, :], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
        name = f"{Path(record['image']).stem}-{args.shape}.png"
        cv2.imwrite(str(args.out / name), bent)
        lines = []
        for line in record["lines"]:
            corners = np.float64(line["polygon"])
            following = np.roll(corners, -1, axis=0)
            along = np.linspace(0, 1, EDGE_POINTS, endpoint=False)[None, :, None]
            points = (corners[:, None] * (1 - along) + following[:, None] * along).reshape(-1, 2)
            points[:, 1] += shifts(points[:, 0], w, h, amount, args.shape)
            lines.append({**line, "polygon": np.round(points).astype(int).tolist()})
        out.append({**record, "image": name, "lines": lines})
    flat = [{**r, "image": str((args.pages.parent / r["image"]).resolve())} for r in chosen]
    for name, rows in (("pages.jsonl", out), ("flat.jsonl", flat)):
        (args.out / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(out)} bent pages in {args.out}")


if __name__ == "__main__":
    main()
