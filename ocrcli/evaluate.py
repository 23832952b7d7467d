"""`ocr eval`: accuracy of the recognizer on pre-cropped lines, per set."""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from ocrcli.errors import InputError
from ocrcli.metrics import ErrorCounter, confusions
from ocrcli.recognition.charset import normalize_text


@dataclass
class LineReport:
    counters: dict[str, ErrorCounter]
    confusions: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    model: str = ""
    unreadable: int = 0
    scored: list[tuple[float, str, str]] = field(default_factory=list)  # (confidence, output, reference)

    def by_confidence(self, bins: int = 10) -> list[tuple[float, float, ErrorCounter]]:
        """Lines sorted by confidence and cut into ``bins`` equal groups: (lowest, highest, errors)."""
        ordered = sorted(self.scored, key=lambda r: r[0])
        out = []
        for b in range(bins):
            part = ordered[b * len(ordered) // bins:(b + 1) * len(ordered) // bins]
            if not part:
                continue
            counter = ErrorCounter()
            for _, hyp, ref in part:
                counter.add(hyp, ref)
            out.append((part[0][0], part[-1][0], counter))
        return out


def evaluate_lines(tsv: Path, model: Path | None, device: str, limit: int | None, batch_size: int,
                   precision: str = "auto", decoder: str = "beam", lm_path: Path | list[Path] | None = None, lexicon: bool = True) -> LineReport:
    """Recognise every line of a TSV and count errors per set (third column, else the TSV name)."""
    from ocrcli.recognition.engine import Recognizer
    from ocrcli.train.data import read_tsv

    try:
        rows = read_tsv(tsv)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{tsv}: cannot read ({exc})") from None
    rows = rows[:limit] if limit else rows
    recognizer = Recognizer(model, device, batch_size, precision, decoder, lm_path, lexicon)
    report = LineReport({"all": ErrorCounter()}, model=f"{recognizer.model_path}, {decoder} decoding")
    started = time.perf_counter()
    chunk = 256  # decode images in chunks so memory stays flat on big TSVs
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        images, refs = [], []
        for path, text, group in part:
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                report.unreadable += 1
                continue
            images.append(image)
            refs.append((text, group))
        for result, (reference, group) in zip(recognizer.recognize(images), refs):
            hypothesis = normalize_text(result.text)
            for key in ("all", group):
                report.counters.setdefault(key, ErrorCounter()).add(hypothesis, reference)
            report.confusions.update(confusions(hypothesis, reference))
            report.scored.append((result.confidence, hypothesis, reference))
    report.seconds = time.perf_counter() - started
    return report


def print_line_report(report: LineReport, verbose: bool, by_confidence: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title=f"ocr eval ({report.model})")
    for col in ("set", "lines", "chars", "CER", "WER"):
        table.add_column(col, justify="left" if col == "set" else "right")
    for name in sorted(k for k in report.counters if k != "all") + ["all"]:
        c = report.counters[name]
        table.add_row(name, str(c.lines), str(c.chars), f"{100 * c.cer:.2f}%", f"{100 * c.wer:.2f}%")
    console.print(table)
    total = report.counters["all"].lines
    console.print(f"{total} lines in {report.seconds:.1f} s ({total / max(report.seconds, 1e-9):.1f} lines/s)"
                  + (f"; {report.unreadable} unreadable images skipped" if report.unreadable else ""))
    if by_confidence:
        dec = Table(title="CER by line confidence decile (lowest confidence first)")
        for col in ("decile", "confidence", "lines", "CER", "WER"):
            dec.add_column(col, justify="right")
        for n, (lo, hi, c) in enumerate(report.by_confidence(), 1):
            dec.add_row(str(n), f"{lo:.3f}-{hi:.3f}", str(c.lines), f"{100 * c.cer:.2f}%", f"{100 * c.wer:.2f}%")
        console.print(dec)
    if verbose:
        conf = Table(title="most frequent character errors (reference -> output)")
        conf.add_column("reference")
        conf.add_column("output")
        conf.add_column("count", justify="right")
        for (ref, hyp), n in report.confusions.most_common(25):
            conf.add_row(repr(ref) if ref else "(inserted)", repr(hyp) if hyp else "(deleted)", str(n))
        console.print(conf)


# --- whole pages -----------------------------------------------------------------------------

@dataclass
class SetPages:
    """Counts for the pages of one set."""

    pages: int = 0
    ref_lines: int = 0
    found_lines: int = 0
    ref_matched: int = 0  # reference lines covered by a found line (box IoU >= 0.5)
    found_matched: int = 0  # found lines that cover a reference line
    page: ErrorCounter = field(default_factory=ErrorCounter)  # page text vs reference lines joined
    page_ref_order: ErrorCounter = field(default_factory=ErrorCounter)  # the same, lines in_reference_order
    lines: ErrorCounter = field(default_factory=ErrorCounter)  # the same pages' reference line images
    peers: dict[str, ErrorCounter] = field(default_factory=dict)  # page CER of other engines
    seconds: float = 0.0

    def merge(self, other: SetPages) -> None:
        """Add another set's counts (for the 'all' row)."""
        self.pages += other.pages
        self.ref_lines += other.ref_lines
        self.found_lines += other.found_lines
        self.ref_matched += other.ref_matched
        self.found_matched += other.found_matched
        self.seconds += other.seconds
        self.page.merge(other.page)
        self.page_ref_order.merge(other.page_ref_order)
        self.lines.merge(other.lines)
        for name, counter in other.peers.items():
            self.peers.setdefault(name, ErrorCounter()).merge(counter)

    @property
    def recall(self) -> float:
        return self.ref_matched / max(self.ref_lines, 1)

    @property
    def precision(self) -> float:
        return self.found_matched / max(self.found_lines, 1)


def box_iou(a: list[int], b: list[int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def in_reference_order(found: list[list[int]], refs: list[list[int]], min_iou: float = 0.2) -> list[int]:
    """Indices of the found lines (boxes x0, y0, x1, y1, in output order) in the order of the
    reference lines they overlap best (box IoU, at least ``min_iou``: looser than a match, so a
    line found taller or shorter than its reference keeps its place); a found line that overlaps
    none goes right after the found line before it, and found lines of one reference keep their order.

    The page CER of the lines in this order leaves the reading order out: some references list
    lines out of reading order (hooker letters: neighbouring lines swapped, runs of lines moved),
    which the page text joined in output order is charged for."""
    keys = []
    last = -1
    for i, f in enumerate(found):
        overlaps = [box_iou(f, r) for r in refs]
        best = max(range(len(refs)), key=overlaps.__getitem__, default=None)
        if best is not None and overlaps[best] >= min_iou:
            last = best
            keys.append((best, 0, i))
        else:
            keys.append((last, 1, i))
    return [i for _, _, i in sorted(keys)]


def page_text(lines: list[str]) -> str:
    """A page's text for CER: every line normalised, empty ones dropped, joined by newlines."""
    return "\n".join(t for t in (normalize_text(line) for line in lines) if t)


def read_peer_tsv(path: Path) -> dict[str, str]:
    """Output of shared/tools/peers.py (path, text with \\n escaped, seconds), keyed by resolved path."""
    out = {}
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        parts = raw.split("\t")
        if len(parts) >= 2:
            out[str(Path(parts[0]).resolve())] = parts[1].replace("\\n", "\n")
    return out


def evaluate_pages(jsonl: Path, model: Path | None, device: str, limit: int | None = None,
                   peers: dict[str, Path] | None = None, line_tsv: Path | None = None,
                   precision: str = "auto", decoder: str = "beam", lm_path: Path | list[Path] | None = None,
                   lexicon: bool = True) -> dict[str, SetPages]:
    """Run the whole pipeline on every page of a pages.jsonl and compare with its reference lines.

    ``line_tsv``: the TSV whose line images are these pages' lines (file names end with the line
    id), for the line-level CER of the same lines; by default ``val.tsv`` beside the jsonl.
    """
    import json

    import numpy as np

    from ocrcli.config import RunConfig
    from ocrcli.pages import iter_pages
    from ocrcli.pipeline import recognize_page
    from ocrcli.recognition.engine import Recognizer
    from ocrcli.train.data import read_tsv

    try:
        records = [json.loads(raw) for raw in Path(jsonl).read_text(encoding="utf-8").splitlines() if raw.strip()]
    except (OSError, ValueError) as exc:
        raise InputError(f"{jsonl}: cannot read ({exc})") from None
    records = records[:limit] if limit else records
    line_tsv = line_tsv or Path(jsonl).parent / "val.tsv"
    # Line images are named "<page stem>_<line id>", or end with a globally unique eScriptorium id.
    line_images: dict[str, Path] = {}
    if line_tsv.exists():
        for path, _, _ in read_tsv(line_tsv):
            line_images[path.stem] = path
            if "eSc_line" in path.stem:
                line_images[path.stem[path.stem.find("eSc_line"):]] = path
    peer_texts = {name: read_peer_tsv(p) for name, p in (peers or {}).items()}
    recognizer = Recognizer(model, device, precision=precision, decoder=decoder, lm_path=lm_path, lexicon=lexicon)
    cfg = RunConfig()
    stats: dict[str, SetPages] = {}
    for rec in records:
        image_path = Path(jsonl).parent / rec["image"]
        s = stats.setdefault(rec["set"], SetPages())
        started = time.perf_counter()
        page = next(iter_pages(image_path))
        result = recognize_page(page, cfg, recognizer)
        s.seconds += time.perf_counter() - started
        found = [line.bbox.to_list() for line in result.lines]
        refs = []
        for line in rec["lines"]:
            pts = np.array(line["polygon"])
            refs.append([int(pts[:, 0].min()), int(pts[:, 1].min()), int(pts[:, 0].max()), int(pts[:, 1].max())])
        s.pages += 1
        s.ref_lines += len(refs)
        s.found_lines += len(found)
        s.ref_matched += sum(1 for r in refs if any(box_iou(r, f) >= 0.5 for f in found))
        s.found_matched += sum(1 for f in found if any(box_iou(r, f) >= 0.5 for r in refs))
        reference = page_text([line["text"] for line in rec["lines"] if line.get("text")])
        s.page.add(page_text([line.text for line in result.lines]), reference)
        s.page_ref_order.add(page_text([result.lines[i].text for i in in_reference_order(found, refs)]), reference)
        for name, texts in peer_texts.items():
            hyp = texts.get(str(image_path.resolve()))
            if hyp is not None:
                s.peers.setdefault(name, ErrorCounter()).add(page_text(hyp.split("\n")), reference)
        crops, texts = [], []
        for line in rec["lines"]:
            line_id = line.get("id", "")
            path = line_images.get(f"{image_path.stem}_{line_id}") or (line_images.get(line_id) if line_id.startswith("eSc_line") else None)
            if path is not None and line.get("text"):
                image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
                if image is not None:
                    crops.append(image)
                    texts.append(normalize_text(line["text"]))
        for out, ref in zip(recognizer.recognize(crops), texts):
            s.lines.add(normalize_text(out.text), ref)
    return stats


def print_page_report(stats: dict[str, SetPages]) -> None:
    from rich.console import Console
    from rich.table import Table

    total = SetPages()
    for s in stats.values():
        total.merge(s)
    peer_names = sorted({n for s in stats.values() for n in s.peers})
    table = Table(title="ocr eval --pages: line finding (box IoU >= 0.5) and page CER")
    for col in ["set", "pages", "ref lines", "found", "recall", "precision", "page CER", "page CER, ref. order", "line CER (same lines)"] + [f"{n} page CER" for n in peer_names] + ["s/page"]:
        table.add_column(col, justify="left" if col == "set" else "right")
    for name, s in sorted(stats.items()) + [("all", total)]:
        row = [name, str(s.pages), str(s.ref_lines), str(s.found_lines), f"{100 * s.recall:.1f}%", f"{100 * s.precision:.1f}%",
               f"{100 * s.page.cer:.2f}%", f"{100 * s.page_ref_order.cer:.2f}%",
               f"{100 * s.lines.cer:.2f}%" if s.lines.lines else "-"]
        row += [f"{100 * s.peers[n].cer:.2f}%" if n in s.peers else "-" for n in peer_names]
        row.append(f"{s.seconds / max(s.pages, 1):.2f}")
        table.add_row(*row)
    Console(highlight=False, width=None if sys.stdout.isatty() else 170).print(table)
