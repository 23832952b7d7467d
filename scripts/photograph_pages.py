"""Make a set of phone-photo-like pages from a pages.jsonl, to measure the page path on photos.

Each chosen page is warped at a random angle (its corners moved by up to --tilt of its size) onto a
larger frame of desk: dark, wooden (wavy grain), light grey or mottled (cloth), in turn; the frame
gets a lighting gradient, every third one (--shadow-every) a shadow across it, soft unless
--shadow-edge says otherwise, and it is saved as a JPEG. The
reference line polygons are warped with the page, so the output is a pages.jsonl of its own:

    python scripts/photograph_pages.py ../shared/data/pages.jsonl photos/ --every 7
    ocr eval --pages photos/pages.jsonl

Deterministic for a given --seed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

DESKS = ("dark", "wood", "grey", "mottled")


def desk(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A desk surface of ``kind``, float32 grey levels."""
    if kind == "dark":
        surface = np.full((h, w), rng.uniform(30, 90), np.float32)
    elif kind == "wood":
        rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
        angle = rng.uniform(0, np.pi)
        across = cols * np.cos(angle) + rows * np.sin(angle)
        surface = 90 + 25 * np.sin(across / rng.uniform(6, 15) + 3 * np.sin(across / 90 + rows / 300))
    elif kind == "grey":
        surface = np.full((h, w), rng.uniform(130, 160), np.float32)
    else:
        blots = rng.normal(0, 1, (h // 40 + 1, w // 40 + 1)).astype(np.float32)
        surface = 100 + 30 * cv2.resize(blots, (w, h), interpolation=cv2.INTER_CUBIC)
    return surface + rng.normal(0, 4, (h, w)).astype(np.float32)


def photograph(page: np.ndarray, kind: str, shadow: bool, tilt: float, frame: tuple[float, float],
               rng: np.random.Generator, shadow_edge: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    """The page on a desk, and the 3x3 perspective map from the page's pixels to the photo's."""
    h, w = page.shape
    frame_h, frame_w = (int(side * rng.uniform(*frame)) for side in (h, w))
    x, y = rng.uniform(0.2, 0.8) * (frame_w - w), rng.uniform(0.2, 0.8) * (frame_h - h)
    jitter = tilt * min(w, h)
    corners = np.float32([[x, y], [x + w, y], [x + w, y + h], [x, y + h]]) + rng.uniform(-jitter, jitter, (4, 2)).astype(np.float32)
    matrix = cv2.getPerspectiveTransform(np.float32([[0, 0], [w, 0], [w, h], [0, h]]), corners)
    sheet = cv2.warpPerspective(page.astype(np.float32), matrix, (frame_w, frame_h))
    inside = cv2.warpPerspective(np.ones((h, w), np.float32), matrix, (frame_w, frame_h))
    photo = inside * sheet + (1 - inside) * desk(kind, frame_h, frame_w, rng)
    rows, cols = np.mgrid[0:frame_h, 0:frame_w].astype(np.float32)
    photo *= 1 - 0.25 * ((cols / frame_w) * rng.uniform(-1, 1) + (rows / frame_h) * rng.uniform(-1, 1)) ** 2
    if shadow:
        angle = rng.uniform(0, np.pi)
        across = (cols - frame_w / 2) * np.cos(angle) + (rows - frame_h / 2) * np.sin(angle) - rng.uniform(-0.2, 0.2) * frame_w
        photo *= 1 - 0.4 / (1 + np.exp(np.clip(-across / (shadow_edge * frame_w), -50, 50)))
    return np.clip(photo, 0, 255).astype(np.uint8), matrix


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pages", type=Path, help="pages.jsonl (image paths relative to its folder)")
    ap.add_argument("out", type=Path, help="folder for the photos and their pages.jsonl")
    ap.add_argument("--every", type=int, default=1, help="take every N-th page")
    ap.add_argument("--offset", type=int, default=0, help="start at this page")
    ap.add_argument("--seed", type=int, default=28)
    ap.add_argument("--tilt", type=float, default=0.06, help="corner jitter, a share of the page's shorter side")
    ap.add_argument("--frame", type=float, nargs=2, default=(1.15, 1.5), help="frame size range, in page sizes")
    ap.add_argument("--shadow-every", type=int, default=3, help="a shadow across every N-th photo")
    ap.add_argument("--shadow-edge", type=float, default=0.03,
                    help="how wide the shadow's edge is, a share of the frame's width (0.002: a hard shadow)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    records = [json.loads(line) for line in args.pages.read_text(encoding="utf-8").splitlines() if line.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    out = []
    for n, record in enumerate(records[args.offset::args.every]):
        page = cv2.imread(str(args.pages.parent / record["image"]), cv2.IMREAD_GRAYSCALE)
        kind, shadow = DESKS[n % len(DESKS)], n % args.shadow_every == 0
        photo, matrix = photograph(page, kind, shadow, args.tilt, tuple(args.frame), rng, args.shadow_edge)
        name = f"{Path(record['image']).stem}-{kind}{'-shadow' if shadow else ''}.jpg"
        cv2.imwrite(str(args.out / name), photo, [cv2.IMWRITE_JPEG_QUALITY, 85])
        lines = []
        for line in record["lines"]:
            points = cv2.perspectiveTransform(np.float32(line["polygon"])[None], matrix)[0]
            lines.append({**line, "polygon": np.round(points).astype(int).tolist()})
        out.append({**record, "image": name, "width": photo.shape[1], "height": photo.shape[0], "lines": lines})
    (args.out / "pages.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out), encoding="utf-8")
    print(f"{len(out)} photos in {args.out}")


if __name__ == "__main__":
    main()
