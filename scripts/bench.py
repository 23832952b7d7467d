"""`make bench`: speed and memory of ocrcli on this machine, printed as one table.

Rows: `ocr --help` start-up, first result for one image (model load included) and line throughput and
CER (pre-cropped lines, --layout line path), each with both decoders (beam, greedy), whole-page time with its split by stage, peak RSS of
the line run, the page run and a 300-page PDF. Uses ../shared/data when present (a fixed 1000-line
val subset and every 6th validation page of each set), else the committed fixture lines and the sample pages.

With ../shared/tools present (and BENCH_PEERS not 0), the same lines and pages also go through
RapidOCR (PP-OCRv6) and Tesseract via shared/tools/peers.py, side by side in the same table.
BENCH_PDF_PAGES sets the size of the long-PDF run (default 300; 0 skips it). With Ray installed
(and BENCH_RAY not 0), the same pages also run on `--engine ray` with 1 and 2 workers. Where torch
sees a CUDA GPU, the same lines run on it at several batch sizes (the last rows; elsewhere a row
says it was not measured).
"""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
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


def page_split(pages: list[Path]) -> tuple[dict[str, float], list[tuple[Path, float, int]]]:
    """Seconds per page for each step of the page path (model loaded once): decode, preprocess,
    segmentation, recognition of the lines, the which-way-up check, the re-reading of tall lines,
    the words between lines; and each page's (path, seconds, lines found)."""
    sys.path.insert(0, str(ROOT))
    from ocrcli.config import RunConfig
    from ocrcli.pages import iter_pages
    from ocrcli.pipeline import add_interlinear, split_merged, upright
    from ocrcli.preprocess import preprocess
    from ocrcli.recognition.engine import Recognizer
    from ocrcli.segment import find_lines, line_crops

    rec = Recognizer(device="cpu")
    cfg = RunConfig()
    steps = ("decode", "preprocess", "segment", "recognize", "orient check", "tall lines re-read", "words between lines")
    totals = dict.fromkeys(steps, 0.0)
    n = 0
    each = []
    for path in pages:
        t = [time.perf_counter()]
        for page in iter_pages(path):
            t.append(time.perf_counter())
            prepared = preprocess(page, cfg.preprocess)
            t.append(time.perf_counter())
            lines = find_lines(prepared)
            crops = line_crops(prepared, lines)
            t.append(time.perf_counter())
            texts = rec.recognize([c.image for c in crops])
            t.append(time.perf_counter())
            read = upright(page, cfg, rec, (prepared, lines, crops, texts))
            t.append(time.perf_counter())
            found, crops, texts = split_merged(*read, rec)
            t.append(time.perf_counter())
            found, _, _ = add_interlinear(read[0], found, crops, texts, rec)
            t.append(time.perf_counter())
            for k, step in enumerate(steps):
                totals[step] += t[k + 1] - t[k]
            each.append((path, t[-1] - t[0], len(found)))
            n += 1
            t = [time.perf_counter()]
    return {k: v / max(n, 1) for k, v in totals.items()}, each


def tsv_rows(tsv: Path) -> list[tuple[str, str]]:
    rows = []
    for raw in tsv.read_text(encoding="utf-8").splitlines():
        parts = raw.split("\t")
        path = Path(parts[0]) if Path(parts[0]).is_absolute() else tsv.parent / parts[0]
        rows.append((str(path), parts[1]))
    return rows


def peer_python() -> Path | None:
    """The peers' venv (installed by shared/tools/setup_peers.sh), or None when unavailable."""
    tools = ROOT.parent / "shared" / "tools"
    if os.environ.get("BENCH_PEERS", "1") == "0" or not (tools / "peers.py").exists():
        return None
    venv = Path(os.environ.get("PEERS_VENV", "/tmp/peers-venv"))
    if not (venv / "bin" / "python").exists() or not shutil.which("tesseract"):
        subprocess.run(["bash", str(tools / "setup_peers.sh"), str(venv)], check=True, stdout=sys.stderr)
    return venv / "bin" / "python"


def run_peer(python: Path, engine: str, mode: str, paths: list[str]) -> tuple[list[str], float]:
    """Texts from a peer engine and the wall time of its run (model load excluded: peers.py times each image)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(paths) + "\n")
    out = subprocess.run([str(python), str(ROOT.parent / "shared" / "tools" / "peers.py"), engine, mode, "--list", fh.name],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(fh.name)
    texts, seconds = [], 0.0
    for row in out.splitlines():
        _, text, secs = row.rsplit("\t", 2)
        texts.append(text.replace("\\n", "\n"))
        seconds += float(secs)
    return texts, seconds


def cer_of(texts: list[str], refs: list[str]) -> float:
    """CER with the DATA.md normalisation, line by line (a page's lines stay separated by newlines)."""
    sys.path.insert(0, str(ROOT))
    from ocrcli.evaluate import page_text
    from ocrcli.metrics import ErrorCounter

    counter = ErrorCounter()
    for hyp, ref in zip(texts, refs):
        counter.add(page_text(hyp.split("\n")), page_text(ref.split("\n")))
    return counter.cer


def page_references(pages: list[Path]) -> list[str] | None:
    """Reference page texts (lines in order) from shared/data/pages.jsonl, when it is there."""
    import json

    index = ROOT.parent / "shared" / "data" / "pages.jsonl"
    if not index.exists():
        return None
    refs = {}
    for raw in index.read_text(encoding="utf-8").splitlines():
        rec = json.loads(raw)
        refs[(index.parent / rec["image"]).resolve()] = "\n".join(line["text"] for line in rec["lines"] if line.get("text"))
    return [refs.get(p.resolve(), "") for p in pages]


def long_pdf(pages: list[Path], count: int, folder: Path) -> Path:
    """A ``count``-page PDF made by repeating the given page images (at 150 dpi page size)."""
    from PIL import Image

    path = folder / f"long-{count}.pdf"
    images = [Image.open(p).convert("L") for p in pages]
    frames = [images[i % len(images)] for i in range(count)]
    frames[0].save(path, format="PDF", save_all=True, append_images=frames[1:], resolution=150)
    return path


DECODERS = ("beam", "greedy")  # beam search with the language model (the default), and best path
GPU_BATCH_SIZES = (32, 64, 128, 256, 512)


def run_eval(tsv: Path, *args: str) -> tuple[float, str]:
    """`ocr eval` of the TSV with extra arguments: (lines/s, CER on all of it)."""
    out = subprocess.run([*OCR, "eval", str(tsv), *args], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    summary = [l for l in out.splitlines() if "lines/s" in l][-1]  # "N lines in S s (L lines/s)"
    cer = [l for l in out.splitlines() if l.strip().startswith("│ all")]  # the table's "all" row
    return float(summary.split("(")[1].split()[0]), (cer[-1].split("│")[4].strip() if cer else "?")


def gpu_rows(tsv: Path, n_lines: int) -> list[tuple[str, str]]:
    """Lines/s on CUDA (fp16) at each of GPU_BATCH_SIZES, greedy, and beam at the best of them."""
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"],
                           check=False, capture_output=True, text=True, cwd=ROOT).stdout.strip()
    if not probe:
        return [("GPU line recognition", "not measured: no CUDA GPU on this machine")]
    rows, best = [], (0.0, GPU_BATCH_SIZES[0])
    for size in GPU_BATCH_SIZES:
        lps, cer = run_eval(tsv, "--device", "cuda", "--decoder", "greedy", "--batch-size", str(size))
        rows.append((f"GPU ({probe}), {n_lines} lines, --decoder greedy --batch-size {size}", f"{lps:.0f} lines/s, CER {cer}"))
        best = max(best, (lps, size))
    lps, cer = run_eval(tsv, "--device", "cuda", "--batch-size", str(best[1]))
    rows.append((f"GPU ({probe}), {n_lines} lines, --decoder beam --batch-size {best[1]}", f"{lps:.0f} lines/s, CER {cer}"))
    return rows


def main() -> None:
    rows: list[tuple[str, str]] = []
    helps = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "ocr"), "--help"], capture_output=True, check=True)
        helps.append(time.perf_counter() - t)
    rows.append(("`ocr --help` start-up (median of 5)", f"{statistics.median(helps):.3f} s"))

    sample = sorted((ROOT / "samples" / "pages").glob("*.jpg"))
    for decoder in DECODERS:  # one run varies by +-0.2 s here: the median of 5
        runs = [child_peak_rss_mb([*OCR, "recognize", str(sample[0]), "--stdout", "-q", "--device", "cpu", "--decoder", decoder])[0]
                for _ in range(5)]
        rows.append((f"first result, one page image, model load included, --decoder {decoder} (median of 5)",
                     f"{statistics.median(runs):.2f} s"))

    tsv = line_subset()
    n_lines = sum(1 for _ in open(tsv, encoding="utf-8"))
    ours_lps = {}
    for decoder in DECODERS:
        ours_lps[decoder], cer = run_eval(tsv, "--device", "cpu", "--decoder", decoder)
        rows.append((f"line recognition, {n_lines} lines ({tsv.name}), --decoder {decoder}", f"{ours_lps[decoder]:.1f} lines/s"))
        rows.append(("  CER on those lines", cer))
    _, rss_lines = child_peak_rss_mb([*OCR, "eval", str(tsv), "--device", "cpu"])
    rows.append(("  peak RSS, line run (beam)", f"{rss_lines:.0f} MB"))
    peers = peer_python()
    line_rows = tsv_rows(tsv)
    if peers:
        # Tesseract reads about 2 lines/s here: it gets the first BENCH_TESSERACT_LINES of the same lines.
        n_tess = int(os.environ.get("BENCH_TESSERACT_LINES", "200"))
        for engine, subset in (("rapidocr", line_rows), ("tesseract", line_rows[:n_tess])):
            texts, seconds = run_peer(peers, engine, "line", [p for p, _ in subset])
            lps = len(texts) / max(seconds, 1e-9)
            what = "same lines" if len(subset) == len(line_rows) else f"first {len(subset)} of the same lines"
            rows.append((f"{engine} line recognition, {what}", f"{lps:.1f} lines/s, CER {100 * cer_of(texts, [t for _, t in subset]):.2f}%"))
            for decoder in DECODERS:
                rows.append((f"  ocrcli / {engine} throughput, --decoder {decoder}", f"{ours_lps[decoder] / max(lps, 1e-9):.2f}x"))
            if len(subset) != len(line_rows):
                sub = Path(tempfile.mkdtemp()) / "subset.tsv"
                sub.write_text("".join(f"{p}\t{t}\n" for p, t in subset), encoding="utf-8")
                rows.append((f"  ocrcli CER on those {len(subset)} lines", run_eval(sub, "--device", "cpu")[1]))

    pages_dir = ROOT.parent / "shared" / "data" / "pages"
    # Every 6th page of each set (the first included), so sets with few pages are timed too.
    pages = ([p for d in sorted(pages_dir.iterdir()) if d.is_dir() for p in sorted(d.glob("*.jpg"))[::6]]
             if pages_dir.exists() else sample)
    split, each = page_split(pages)
    rows.append((f"whole page, {len(pages)} pages (s/page)", f"{sum(split.values()):.2f} s"))
    for k, v in split.items():
        rows.append((f"  {k}", f"{v:.3f} s"))
    by_set: dict[str, list[tuple[float, int]]] = {}
    for path, secs, n_lines in each:
        by_set.setdefault(path.parent.name if pages_dir.exists() else "samples", []).append((secs, n_lines))
    for name, timed in by_set.items():
        rows.append((f"  {name}: {len(timed)} page{'s' if len(timed) > 1 else ''}, {statistics.mean(n for _, n in timed):.0f} lines a page",
                     f"{statistics.mean(s for s, _ in timed):.2f} s/page"))
    path, secs, n_lines = max(each, key=lambda e: e[1])
    rows.append((f"  slowest page: {path.parent.name}/{path.name}, {n_lines} lines", f"{secs:.2f} s"))
    with tempfile.TemporaryDirectory() as tmp:
        seconds, rss_pages = child_peak_rss_mb([*OCR, "recognize", *map(str, pages), "-o", tmp, "-q", "--device", "cpu"])
        refs = page_references(pages)
        if refs:
            outs = [Path(tmp) / (p.stem + ".txt") for p in pages]
            outs = [o if o.exists() else Path(tmp) / (p.name + ".txt") for o, p in zip(outs, pages)]  # same-stem inputs
            texts = [o.read_text(encoding="utf-8").replace("\f", "\n") for o in outs]
            rows.append(("  page CER (lines in reading order)", f"{100 * cer_of(texts, refs):.2f}%"))
    rows.append((f"  whole page via the CLI, {len(pages)} pages, model load included", f"{seconds / len(pages):.2f} s/page"))
    rows.append(("  peak RSS, page run", f"{rss_pages:.0f} MB"))
    if peers:
        texts, secs = run_peer(peers, "rapidocr", "page", [str(p) for p in pages])
        rows.append(("rapidocr whole page, same pages", f"{secs / len(pages):.2f} s/page"
                     + (f", page CER {100 * cer_of(texts, refs):.2f}%" if refs else "")))

    if os.environ.get("BENCH_RAY", "1") != "0" and importlib.util.find_spec("ray") is not None:
        # Every validation page (89), so Ray's start-up (about 7 s here, in the wall time) weighs less.
        all_pages = sorted(pages_dir.glob("*/*.jpg")) if pages_dir.exists() else pages
        for engine, workers in (("local", 0), ("ray", 1), ("ray", 2)):
            cmd = [*OCR, "recognize", *map(str, all_pages), "-q", "--device", "cpu"]
            if workers:
                cmd += ["--engine", "ray", "--workers", str(workers)]
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                subprocess.run([*cmd, "-o", tmp], check=True, capture_output=True)
                secs = time.perf_counter() - t
            what = f"ray engine, {workers} worker{'s' if workers > 1 else ''} x 1 CPU" if workers else "local engine (for comparison)"
            rows.append((f"{what}, {len(all_pages)} pages, start-up included", f"{secs:.1f} s, {len(all_pages) / secs:.2f} pages/s"))

    n_pdf = int(os.environ.get("BENCH_PDF_PAGES", "300"))
    if n_pdf:
        with tempfile.TemporaryDirectory() as tmp:
            pdf = long_pdf(pages, n_pdf, Path(tmp))
            seconds, rss_pdf = child_peak_rss_mb([*OCR, "recognize", str(pdf), "-o", tmp, "-q", "--device", "cpu"])
        rows.append((f"{n_pdf}-page PDF (pages rendered one at a time at 200 dpi)", f"{seconds:.0f} s, {seconds / n_pdf:.2f} s/page"))
        rows.append(("  peak RSS, long PDF run", f"{rss_pdf:.0f} MB"))

    rows += gpu_rows(tsv, n_lines)

    width = max(len(r[0]) for r in rows)
    print(f"ocrcli bench ({os.cpu_count()} CPUs, torch threads default)")
    print(f"| {'what'.ljust(width)} | result |")
    print(f"|{'-' * (width + 2)}|--------|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")


if __name__ == "__main__":
    main()
