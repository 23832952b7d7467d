"""`make bench`: speed and memory of ocrcli on this machine, printed as one table.

Rows: `ocr --help` start-up, first result for one image (model load included), line throughput and
CER (pre-cropped lines, --layout line path), whole-page time with its split by stage, peak RSS.
Uses ../shared/data when present (a fixed 1000-line val subset), else the committed fixture lines.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OCR = [sys.executable, "-m", "ocrcli.cli"]


def child_peak_rss_mb(cmd: list[str]) -> tuple[float, float]:
    """Run a command in a fresh process; return (seconds, its peak RSS in MB)."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
            "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    seconds, rss = out.split()
    return float(seconds), float(rss)


def line_subset(n: int = 1000) -> Path:
    shared = ROOT.parent / "shared" / "data" / "val.tsv"
    if not shared.exists():
        return ROOT / "tests" / "fixtures" / "val_lines" / "lines.tsv"
    rows = shared.read_text(encoding="utf-8").splitlines()
    rows = random.Random(1000).sample(rows, min(n, len(rows)))
    tmp = Path(tempfile.mkdtemp()) / "val1000.tsv"
    tmp.write_text("\n".join(f"{shared.parent / r.split(chr(9))[0]}\t{r.split(chr(9), 1)[1]}" for r in rows) + "\n", encoding="utf-8")
    return tmp


def page_split(pages: list[Path]) -> dict[str, float]:
    """Seconds per page for decode, preprocess, segmentation and recognition (model loaded once)."""
    sys.path.insert(0, str(ROOT))
    from ocrcli.config import PreprocessConfig
    from ocrcli.pages import iter_pages
    from ocrcli.preprocess import preprocess
    from ocrcli.recognize.engine import Recognizer
    from ocrcli.segment import find_lines, line_crops

    rec = Recognizer(device="cpu")
    totals = {"decode": 0.0, "preprocess": 0.0, "segment": 0.0, "recognize": 0.0}
    n = 0
    for path in pages:
        t = time.perf_counter()
        for page in iter_pages(path):
            t1 = time.perf_counter()
            totals["decode"] += t1 - t
            prepared = preprocess(page, PreprocessConfig())
            t2 = time.perf_counter()
            lines = find_lines(prepared)
            crops = line_crops(prepared, lines)
            t3 = time.perf_counter()
            rec.recognize([c.image for c in crops])
            t = time.perf_counter()
            totals["preprocess"] += t2 - t1
            totals["segment"] += t3 - t2
            totals["recognize"] += t - t3
            n += 1
    return {k: v / max(n, 1) for k, v in totals.items()}


def main() -> None:
    rows: list[tuple[str, str]] = []
    helps = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "ocr"), "--help"], capture_output=True, check=True)
        helps.append(time.perf_counter() - t)
    rows.append(("`ocr --help` start-up (median of 5)", f"{statistics.median(helps):.3f} s"))

    sample = sorted((ROOT / "samples" / "pages").glob("*.jpg"))
    seconds, rss = child_peak_rss_mb([*OCR, "recognize", str(sample[0]), "--stdout", "-q", "--device", "cpu"])
    rows.append(("first result, one page image, model load included", f"{seconds:.2f} s"))

    tsv = line_subset()
    n_lines = sum(1 for _ in open(tsv, encoding="utf-8"))
    out = subprocess.run([*OCR, "eval", str(tsv), "--device", "cpu"], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    summary = [l for l in out.splitlines() if "lines/s" in l][-1]
    cer = [l for l in out.splitlines() if l.strip().startswith(("│ all", "| all", "all"))]
    rows.append((f"line recognition, {n_lines} lines ({tsv.name})", summary.strip()))
    if cer:
        rows.append(("  CER on those lines", cer[-1].split("│")[4].strip() if "│" in cer[-1] else cer[-1]))
    _, rss_lines = child_peak_rss_mb([*OCR, "eval", str(tsv), "--device", "cpu"])
    rows.append(("  peak RSS, line run", f"{rss_lines:.0f} MB"))

    pages_dir = ROOT.parent / "shared" / "data" / "pages"
    pages = sorted(pages_dir.glob("*/*.jpg"))[::6] if pages_dir.exists() else sample
    split = page_split(pages)
    rows.append((f"whole page, {len(pages)} pages (s/page)", f"{sum(split.values()):.2f} s"))
    for k, v in split.items():
        rows.append((f"  {k}", f"{v:.3f} s"))
    with tempfile.TemporaryDirectory() as tmp:
        seconds, rss_pages = child_peak_rss_mb([*OCR, "recognize", *map(str, pages), "-o", tmp, "-q", "--device", "cpu"])
    rows.append(("  peak RSS, page run", f"{rss_pages:.0f} MB"))

    width = max(len(r[0]) for r in rows)
    print(f"ocrcli bench ({os.cpu_count()} CPUs, torch threads default)")
    print(f"| {'what'.ljust(width)} | result |")
    print(f"|{'-' * (width + 2)}|--------|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")


if __name__ == "__main__":
    main()
