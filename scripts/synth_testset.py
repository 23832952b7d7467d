"""Render a synthetic English test set of handwriting-font lines, to measure with `ocr eval`.

usage: python scripts/synth_testset.py OUT_DIR [--lines 500] [--seed 20261121] [--fonts ../shared/fonts]

Writes OUT_DIR/images/NNNNN.png and OUT_DIR/lines.tsv (path, text, set = "synth"). The texts come
from the training text generator with a seed that training never uses (training seeds are small
integers), so the lines' texts are new; the fonts are the training fonts (every usable font of
fonts.csv is in training), rendered with the training renderer's random size, slant, spacing,
wobble, stroke, ink, paper, ruling and neighbour fragments. Then:

    ocr eval OUT_DIR/lines.tsv                      # beam search + language model
    ocr eval OUT_DIR/lines.tsv --decoder greedy
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402

from ocrcli.recognition.charset import DEFAULT_ALPHABET, Charset  # noqa: E402
from ocrcli.train.synth import SynthRenderer, TextSource, load_fonts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--lines", type=int, default=500)
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--fonts", type=Path, default=ROOT.parent / "shared" / "fonts")
    args = parser.parse_args()
    texts = TextSource(args.seed)
    renderer = SynthRenderer(load_fonts(args.fonts), args.seed)
    charset = Charset(DEFAULT_ALPHABET)
    (args.out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    while len(rows) < args.lines:
        image, text = renderer.render(texts.line())
        if not text or charset.unknown(text):
            continue
        name = f"images/{len(rows):05d}.png"
        cv2.imwrite(str(args.out / name), image)
        rows.append(f"{name}\t{text}\tsynth\n")
    (args.out / "lines.tsv").write_text("".join(rows), encoding="utf-8")
    print(args.out / "lines.tsv")


if __name__ == "__main__":
    main()
