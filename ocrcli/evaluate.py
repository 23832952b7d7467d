"""`ocr eval`: accuracy of the recognizer on pre-cropped lines, per set."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from ocrcli.errors import InputError
from ocrcli.metrics import ErrorCounter, confusions
from ocrcli.recognize.charset import normalize_text


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


def evaluate_lines(tsv: Path, model: Path | None, device: str, limit: int | None, batch_size: int) -> LineReport:
    """Recognise every line of a TSV and count errors per set (third column, else the TSV name)."""
    from ocrcli.recognize.engine import Recognizer
    from ocrcli.train.data import read_tsv

    try:
        rows = read_tsv(tsv)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{tsv}: cannot read ({exc})") from None
    rows = rows[:limit] if limit else rows
    recognizer = Recognizer(model, device, batch_size)
    report = LineReport({"all": ErrorCounter()}, model=str(recognizer.model_path))
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
