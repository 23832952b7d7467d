"""Rebuild samples/ from ../shared/data: a few real val pages, a PDF and a multi-page TIFF, and references.

usage: python scripts/make_samples.py [SHARED_DATA_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image

PAGES = {  # sample name -> (page in pages.jsonl, attribution)
    "copiste-wikitexte_0031_1": ("pages/copiste/wikitexte_0031_1.jpg",
        "wikitexte_0031_1 from banq-dcn/Copiste-d-un-jour (Bibliothèque et Archives nationales du Québec), CC BY 4.0."),
    "hooker-JDH_2_16_145_001": ("pages/hooker/JDH_2_16_145_001.jpg",
        "JDH_2_16_145_001 from jschaefer738b/JosephHookerHTR, CC BY-SA 4.0; images (c) Board of Trustees of the "
        "Royal Botanic Gardens, Kew, reproduced with permission."),
    "peraire-B.25.siam_0003": ("pages/peraire/B.25.siam_0003.jpg",
        "B.25.siam_0003 from alix-tz/peraire-ground-truth, CC BY 4.0."),
    "poilus-will_AN_0050-0": ("pages/poilus/TestamentsDePoilus_will_AN_0050-0.jpg",
        "TestamentsDePoilus_will_AN_0050-0 from HTR-United/CREMMA-AN-TestamentDePoilus, CC BY 4.0."),
}
PDF = ("letter-hooker-copiste.pdf", ["hooker-JDH_2_16_145_001", "copiste-wikitexte_0031_1"])
TIFF = ("notebook-peraire-poilus.tif", ["peraire-B.25.siam_0003", "poilus-will_AN_0050-0"])


def reference(page: dict) -> str:
    return "\n".join(line["text"] for line in page["lines"] if line.get("text"))


def main() -> None:
    data = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
    out = Path(__file__).resolve().parent.parent / "samples"
    pages = {json.loads(l)["image"]: json.loads(l) for l in open(data / "pages.jsonl", encoding="utf-8")}
    (out / "pages").mkdir(parents=True, exist_ok=True)
    (out / "reference").mkdir(parents=True, exist_ok=True)
    images = {}
    attribution = ["# Sample attribution", "", "The sample pages are real handwriting from published ground-truth sets:", ""]
    for name, (image, credit) in PAGES.items():
        im = Image.open(data / image).convert("L")
        im.save(out / "pages" / f"{name}.jpg", quality=85, optimize=True)
        images[name] = im
        (out / "reference" / f"{name}.txt").write_text(reference(pages[image]) + "\n", encoding="utf-8")
        attribution.append(f"- `{name}.jpg`: {credit}")
    pdf_name, pdf_pages = PDF
    first, *rest = [images[n] for n in pdf_pages]
    first.save(out / pdf_name, save_all=True, append_images=rest, resolution=200.0)
    (out / "reference" / (Path(pdf_name).stem + ".txt")).write_text(
        "\f".join(reference(pages[PAGES[n][0]]) for n in pdf_pages) + "\n", encoding="utf-8")
    tif_name, tif_pages = TIFF
    # Fresh images without the JPEG's info block, which the libtiff encoder rejects.
    first, *rest = [Image.frombytes("L", images[n].size, images[n].tobytes()) for n in tif_pages]
    first.save(out / tif_name, save_all=True, append_images=rest, compression="jpeg", quality=85)
    (out / "reference" / (Path(tif_name).stem + ".txt")).write_text(
        "\f".join(reference(pages[PAGES[n][0]]) for n in tif_pages) + "\n", encoding="utf-8")
    attribution += ["", f"`{pdf_name}` holds {', '.join(pdf_pages)}; `{tif_name}` holds {', '.join(tif_pages)}.",
                    "`reference/` has their transcriptions (lines in reading order; pages separated by a form feed),",
                    "from the same sets and under the same licenses. Rebuilt by `scripts/make_samples.py`."]
    (out / "ATTRIBUTION.md").write_text("\n".join(attribution) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
