"""Files -> outcomes: the one place that loops over inputs, catching each file's errors.

    input file -> pages -> preprocess stages -> line crops -> recognizer -> writers
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from rapidfuzz.distance import Levenshtein

from ocrcli.config import RunConfig
from ocrcli.documents import BBox, DocumentResult, LineResult, Page, PageResult, WordResult
from ocrcli.errors import InputError, OcrError, OutputError
from ocrcli.inputs import InputFile
from ocrcli.output import WRITERS, RunInfo, write_output
from ocrcli.pages import iter_pages
from ocrcli.preprocess import crop_paper, invert, is_quarter_turned, looks_negative, preprocess, turn, weighted_median
from ocrcli.recognition.decode import split_words
from ocrcli.segment import find_lines, interlinear, line_box, line_boxes, line_crops, place_words, split_in_two


@dataclass
class FileOutcome:
    """What happened to one input file."""

    input: InputFile | None  # None: a path argument that named no usable file (see error)
    result: DocumentResult | None = None
    error: str | None = None
    written: list[Path] = field(default_factory=list)
    skipped: bool = False
    output_error: bool = False

    @property
    def pages(self) -> int:
        return len(self.result.pages) if self.result else 0

    @property
    def lines(self) -> int:
        return sum(len(p.lines) for p in self.result.pages) if self.result else 0

    @property
    def to_review(self) -> int:
        return sum(1 for p in self.result.pages for ln in p.lines if ln.review) if self.result else 0


def output_paths(files: list[InputFile], cfg: RunConfig) -> dict[Path, dict[str, Path]]:
    """Where each input's outputs go, per format.

    Beside the input by default, or under --output-dir mirroring the input's folders. Two inputs
    that would share an output (notes/1.jpg and notes/1.png) keep their full names: 1.jpg.txt.
    """
    def base(f: InputFile) -> Path:
        if cfg.output_dir is None:
            return f.path.parent
        rel_parent = f.relative.parent
        parts = [p for p in rel_parent.parts if p not in ("..", ".", "/", "\\") and not Path(p).is_absolute()]
        return cfg.output_dir.joinpath(*parts)

    stems: dict[Path, int] = {}
    for f in files:
        key = base(f) / f.path.stem
        stems[key] = stems.get(key, 0) + 1
    out: dict[Path, dict[str, Path]] = {}
    for f in files:
        folder = base(f)
        name = f.path.stem if stems[folder / f.path.stem] == 1 else f.path.name
        out[f.path] = {fmt: folder / (name + WRITERS[fmt].suffix) for fmt in cfg.formats}
    return out


class StageSaver:
    """Writes the image after every stage, and the found lines drawn on the page (--save-stages)."""

    def __init__(self, folder: Path, input_file: InputFile) -> None:
        self.folder = folder
        # The input's path relative to its folder, flattened: inputs with the same stem don't collide.
        self.stem = "__".join(input_file.relative.parts)
        folder.mkdir(parents=True, exist_ok=True)

    def _write(self, name: str, image: np.ndarray) -> None:
        path = self.folder / f"{name}.png"
        ok, buf = cv2.imencode(".png", image)
        if ok:
            tmp = path.with_name(f".{path.name}.part")
            tmp.write_bytes(buf.tobytes())
            tmp.replace(path)

    def stage(self, page_number: int, index: int, stage: str, page: Page) -> None:
        self._write(f"{self.stem}-p{page_number}-{index}-{stage}", page.image)
        if stage in ("binarize", "mask") and page.ink is not None:
            self._write(f"{self.stem}-p{page_number}-{index}-{stage}-ink", 255 - page.ink)

    def lines(self, page_number: int, page: Page, boxes: list[BBox]) -> None:
        vis = cv2.cvtColor(page.image, cv2.COLOR_GRAY2BGR)
        for n, box in enumerate(boxes, 1):
            cv2.rectangle(vis, (box.x0, box.y0), (box.x1 - 1, box.y1 - 1), (0, 0, 255), 2)
            cv2.putText(vis, str(n), (box.x0, max(12, box.y0 + 14)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 128, 255), 1)
        self._write(f"{self.stem}-p{page_number}-lines", vis)


def reading_spans(text) -> list:
    """The words of a reading (``LineText``) with where CTC emitted them, in its crop's pixels."""
    return split_words(text.text, list(text.char_x), list(text.char_probs)) if text.char_x else []


def _words(spans: list, crop_box: BBox, line_box: BBox, page: Page) -> list[WordResult]:
    """Word boxes from the CTC alignment (``reading_spans``), mapped to the decoded image's pixels."""
    words = []
    for span in spans:
        # Kept inside the line's box: the crop's margin is not part of the line.
        x0 = min(line_box.x1 - 1, max(line_box.x0, crop_box.x0 + int(span.x0)))
        x1 = max(x0 + 1, min(line_box.x1, crop_box.x0 + int(round(span.x1))))
        box, _ = page.to_source(BBox(x0, line_box.y0, x1, line_box.y1))
        words.append(WordResult(span.text, span.confidence, box))
    return words


# A line is reported as wide as what was read in it: from half a character pitch before its first
# character to half after its last (where CTC emitted them, as for its words), plus TEXT_MARGIN of
# its box's height each side; the line finder's box reaches further (the smear that joins a line's
# words, a flourish, a stray mark the recognizer left out): a short date or name in a margin was
# reported 2-2.5 times as wide as its reference. On the 89 validation pages: see README, "How a
# page is read".
TEXT_MARGIN = 0.25


def text_span(box: BBox, crop_box: BBox, spans: list) -> BBox:
    """``box`` (a line's reported box, in the page's pixels) narrowed to the columns that the words
    read in it (``reading_spans``, in the crop at ``crop_box``) span; ``box`` itself where nothing
    was read."""
    if not spans:
        return box
    margin = TEXT_MARGIN * box.height
    x0 = max(box.x0, int(crop_box.x0 + min(s.x0 for s in spans) - margin))
    x1 = min(box.x1, int(round(crop_box.x0 + max(s.x1 for s in spans) + margin)))
    return BBox(x0, box.y0, x1, box.y1) if x1 > x0 else box


def _review(text, cfg: RunConfig) -> bool:
    return cfg.review_below is not None and text.confidence < cfg.review_below


def segment_page(page: Page, cfg: RunConfig, on_stage=None):
    """Preprocessing stages, then line finding: (prepared page, lines in reading order, their crops)."""
    prepared = preprocess(page, cfg.preprocess, on_stage)
    return (prepared, *cut_lines(prepared))


def cut_lines(prepared: Page) -> tuple[list, list]:
    """The lines of a preprocessed page in reading order, and their crops."""
    found = find_lines(prepared)
    return found, line_crops(prepared, found)


# Short lines read with low confidence are mostly not text: pieces of stamps, rules and the
# ascenders and descenders of dense lines that page segmentation cut out on their own. Dropping
# lines of at most 10 characters (spaces not counted) under confidence 0.3 lowered page CER on the
# 89 validation pages from 36.22% to 34.49%, on every set (poilus 55.33 -> 46.09%); chosen among
# 0.1-0.3 x 3-10 characters on those same pages. --keep-fragments keeps them.
FRAGMENT_CONFIDENCE = 0.3
FRAGMENT_CHARS = 10
# Two more kinds of junk, seen among the 89 pages' unmatched lines: a lone character under
# confidence 0.5 (binding edges and page-edge specks read as "1", "M" or "S"), and a line of at
# most 3 characters whose box is over twice its height wide per character (an underline, a rule's
# remnant or a flourish read as "7", "-" or "I"). Dropping them: page CER 23.79 -> 23.73%,
# precision 82.3 -> 83.9%, recall unchanged (no set worse); 0.5-0.6 x 2-3 all read 23.71-23.74%,
# and 0.6 also dropped a real page number read at 0.55.
LONE_CHAR_CONFIDENCE = 0.5
WIDE_CHARS = 3
WIDE_PER_CHAR = 2.0
# A lone stroke read with any confidence: on the 89 validation pages 34 lines were one "1", '"' or
# "-", 33 of them not text (pencil ticks cut off by a register's column rule, ditto marks, marks at
# the page's edge); the other was a page number ("1", kept by --keep-fragments). Dropping them:
# precision 85.3 -> 86.5% (lectaurep 78.0 -> 81.8%), page CER 22.08 -> 22.03%, recall 83.3%
# (peraire 86.1 -> 85.6%: that page number). Keeping those above or below all the page's other
# lines, where page numbers are, kept two marks at the foot of copiste pages and not the page
# number, below a line of show-through (session 37).
LONE_STROKES = frozenset("1lI|!/\\'\"-_.,:;")


def is_fragment(text: str, confidence: float, box: BBox | None = None) -> bool:
    """A line the page path drops unless --keep-fragments: short and read with low confidence, a
    lone doubtful character, a lone stroke ("1", "-", ...), or (given its ``box``) a few characters
    spread over a long stroke."""
    chars = len("".join(text.split()))
    if confidence < FRAGMENT_CONFIDENCE and chars <= FRAGMENT_CHARS:
        return True
    if chars <= 1 and confidence < LONE_CHAR_CONFIDENCE:
        return True
    if chars == 1 and text.strip() in LONE_STROKES:
        return True
    return box is not None and chars <= WIDE_CHARS and box.width > WIDE_PER_CHAR * max(1, chars) * max(1, box.height)


class EarlyPage:
    """The first page of the first input, decoded, preprocessed and segmented in a thread while the
    model loads (torch's import is most of a short run's time; OpenCV works beside it).
    ``recognize_file`` takes the result for that page; any failure there is left to the normal path."""

    def __init__(self, input_file: InputFile, cfg: RunConfig) -> None:
        import threading

        self.path, self.cfg, self.result = input_file.path, cfg, None
        self.thread = threading.Thread(target=self._run, name="ocrcli-early-page", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            page = next(iter_pages(self.path, self.cfg.dpi, self.cfg.preprocess.exif_orientation, lambda error: None))
            self.result = (page.number, segment_page(page, self.cfg))
        except Exception:  # noqa: BLE001 - the normal path reads the file again and reports its errors
            self.result = None

    def take(self, path: Path, number: int, cfg: RunConfig):
        """(prepared page, lines, crops) of that page when this is it, else None (once)."""
        if path != self.path or cfg is not self.cfg:
            return None
        self.thread.join()
        result, self.result = self.result, None
        return result[1] if result is not None and result[0] == number else None


def recognize_page(page: Page, cfg: RunConfig, recognizer, saver: StageSaver | None = None,
                   segmented: tuple | None = None) -> PageResult:
    """One page through the stages and the recognizer (``segmented``: its segment_page result,
    when it was computed already)."""
    width, height = page.source_size
    if cfg.layout == "line":
        text = recognizer.recognize([page.image])[0]
        box = BBox(0, 0, width, height)
        lines = [LineResult(text.text, text.confidence, box, None, _words(reading_spans(text), box, box, page), _review(text, cfg))] if text.text else []
        return PageResult(page.number, width, height, lines, page.steps, _keep_image(page, cfg))
    counter = itertools.count(1)
    on_stage = (lambda name, p: saver.stage(page.number, next(counter), name, p)) if saver else None
    if saver:
        saver.stage(page.number, 0, "input", page)  # as decoded: EXIF-oriented grayscale
    prepared, found, crops = segmented if segmented is not None else segment_page(page, cfg, on_stage)
    texts = recognizer.recognize([c.image for c in crops], fit=False)
    if cfg.preprocess.orient:
        prepared, found, crops, texts = upright(page, cfg, recognizer, (prepared, found, crops, texts))
        if on_stage and any(step.get("step") in ("orient", "invert") for step in prepared.steps):
            on_stage("orient", prepared)
    found, crops, texts = split_merged(prepared, found, crops, texts, recognizer)
    found, crops, texts = add_interlinear(prepared, found, crops, texts, recognizer)
    results = []
    boxes = line_boxes(found, crops, prepared.image.shape[0])
    for line, crop, text, reported in zip(found, crops, texts, boxes):
        if not text.text.strip() or (not cfg.keep_fragments and is_fragment(text.text, text.confidence, line_box(line, crop))):
            continue
        spans = reading_spans(text)
        reported = text_span(reported, crop.box, spans)
        box, polygon = prepared.to_source(reported)
        results.append(LineResult(text.text, text.confidence, box, polygon, _words(spans, crop.box, reported, prepared), _review(text, cfg)))
    if saver:
        saver.lines(page.number, prepared, boxes)
    return PageResult(page.number, width, height, results, prepared.steps, _keep_image(page, cfg))


# A found line much taller than the page's typical line is often two lines found as one (touching
# ascenders and descenders, show-through between them), and the recognizer reads such a crop
# poorly. Lines over SPLIT_HEIGHT x the page's typical line height are also read cut in two at
# their emptiest middle row, and stay cut when both halves read something and their characters'
# mean confidence (geometric) beats the whole's by SPLIT_GAIN. On the 89 validation pages: page CER
# 24.98 -> 23.79%, every set better; 23.8-23.9% for any of 1.25-1.55 x 0.02-0.08.
SPLIT_HEIGHT = 1.5
SPLIT_GAIN = 0.05


def _char_confidence(texts: list) -> float:
    """Geometric mean of the probabilities of all characters of ``texts``."""
    logs = [np.log(max(p, 1e-12)) for t in texts for p in t.char_probs]
    return float(np.exp(np.mean(logs))) if logs else 0.0


def split_merged(prepared: Page, found: list, crops: list, texts: list | None, recognizer) -> tuple[list, list, list | None]:
    """(lines, crops, texts) with each tall line replaced by its two halves where they read better.
    ``texts``: the lines' readings, or None to read only the tall lines (texts None back)."""
    if len(found) < 2 or prepared.ink is None:
        return found, crops, texts
    # The height of the line in the middle of the page's written width: a column of specks or
    # short marks (a binding's stitches down the edge) does not make every real line "tall".
    typical = weighted_median(np.array([ln.bbox.height for ln in found]), np.array([ln.bbox.width for ln in found]))
    halves = {i: pair for i, ln in enumerate(found)
              if ln.bbox.height > SPLIT_HEIGHT * typical and (pair := split_in_two(prepared.ink, ln, typical))}
    if not halves:
        return found, crops, texts
    trial, first = [], {}  # every line, the tall ones as their halves; where each pair starts
    for i, ln in enumerate(found):
        if i in halves:
            first[i] = len(trial)
        trial += halves.get(i, (ln,))
    # Seams recomputed: each half is parted from the other (only the halves' crops are cut).
    want = [first[i] + k for i in halves for k in (0, 1)]
    half_crops = dict(zip(want, line_crops(prepared, trial, wanted=want)))
    read = recognizer.recognize([half_crops[k].image for k in want]
                                + ([crops[i].image for i in halves] if texts is None else []), fit=False)
    pairs = dict(zip(halves, (read[k:k + 2] for k in range(0, 2 * len(halves), 2))))
    whole = dict(zip(halves, read[2 * len(halves):])) if texts is None else {i: texts[i] for i in halves}
    lines, cut, reading = [], [], []
    for i, (line, crop) in enumerate(zip(found, crops)):
        pair = pairs.get(i)
        if pair and all(t.text.strip() for t in pair) and _char_confidence(pair) > _char_confidence([whole[i]]) + SPLIT_GAIN:
            lines += trial[first[i]:first[i] + 2]
            cut += [half_crops[first[i]], half_crops[first[i] + 1]]
            reading += pair
        else:
            lines.append(line)
            cut.append(crop)
            reading.append(texts[i] if texts is not None else None)
    return lines, cut, reading if texts is not None else None


# Words written between lines (an insertion above a line, a correction) are their own lines in a
# transcription; left inside a neighbour's crop they are lost or garble it. Such a cluster of ink
# (segment.interlinear) is read as a line of its own, and kept when it reads at confidence
# INSERT_CONFIDENCE or more with at least INSERT_LETTERS letters (a word, not a speck or a stroke)
# and does not repeat a line it overlaps; the lines next to it are then cut and read again without
# it. A row of the page the segmenter took into a neighbour comes back so too. On the 89 validation
# pages: see README, "How a page is read".
INSERT_CONFIDENCE = 0.5
INSERT_LETTERS = 4


def add_interlinear(prepared: Page, found: list, crops: list, texts: list | None, recognizer) -> tuple[list, list, list | None]:
    """(lines, crops, texts) with the words written between lines added as lines of their own
    where they read as words (placed by ``segment.place_words``). ``texts`` None: all the words are
    added unread (texts None back)."""
    words = interlinear(prepared, found)
    if not words:
        return found, crops, texts
    trial = place_words(prepared, found, words)
    if texts is None:
        return trial, line_crops(prepared, trial), None
    # The words are cut and read first, on their own; the lines next to them are cut and read
    # again only around the words kept (most pages keep none).
    at = {id(ln): k for k, ln in enumerate(trial)}
    cut = dict(zip(map(id, words), line_crops(prepared, trial, wanted=[at[id(w)] for w in words])))
    heard = dict(zip(map(id, words), recognizer.recognize([cut[id(w)].image for w in words], fit=False)))
    old = {id(ln): (crop, text) for ln, crop, text in zip(found, crops, texts)}

    def repeats(word):  # the same ink as a line's it overlaps (a row the line already reads)
        box = word.bbox
        return any(Levenshtein.normalized_distance(heard[id(word)].text, old[id(ln)][1].text) < 0.5 for ln in found
                   if ln.bbox.x0 < box.x1 and ln.bbox.x1 > box.x0 and ln.bbox.y0 < box.y1 and ln.bbox.y1 > box.y0)

    kept = [w for w in words if heard[id(w)].confidence >= INSERT_CONFIDENCE and not repeats(w)
            and sum(ch.isalpha() for ch in heard[id(w)].text) >= INSERT_LETTERS]
    if not kept:
        return found, crops, texts
    if len(kept) < len(words):  # placed again with only the words that read well
        trial = place_words(prepared, found, kept)
    trial_crops = line_crops(prepared, trial)
    old.update((id(w), (cut[id(w)], heard[id(w)])) for w in kept)
    read = _read_changed(trial, trial_crops, old, recognizer)
    return trial, trial_crops, [read.get(id(ln)) or old[id(ln)][1] for ln in trial]


def _read_changed(lines: list, crops: list, old: dict, recognizer) -> dict:
    """Readings, by id of line, of the lines that are new or whose crops differ from ``old``'s."""
    again = [(ln, crop) for ln, crop in zip(lines, crops)
             if id(ln) not in old or old[id(ln)][0].box != crop.box or not np.array_equal(old[id(ln)][0].image, crop.image)]
    return {id(ln): text for (ln, _), text in zip(again, recognizer.recognize([crop.image for _, crop in again], fit=False))}


# Which way up: the recognizer reads the longest lines of a page a second time, turned by half a
# turn, and the page is turned when that reading is more confident. The turned lines are decoded
# greedily (beam search spends 36% of a turned line's time on garbage), and both readings are
# compared by their best path's confidence (LineText.path_confidence). On the 89 validation pages,
# each read upright and upside down, the mean best-path confidence of the eight longest lines turned
# was at least 0.029 below that of the lines as cut on every upright page, and at least 0.132 above
# it on every page upside down. A page whose ink suggests sideways lines is also read turned a
# quarter, and the reading with more confidently read characters wins (mean confidence alone is not
# enough there: a sideways page cut into a few strips can read as confidently as short garbage).
# The turned lines are read in two steps: the ORIENT_FIRST longest, and the rest of the
# ORIENT_LINES only when those leave it open (turned within ORIENT_CLEAR of the lines as cut, in
# mean confidence). After the first four, 174 of those 178 pages are clear of 0.15 and none is
# within 0.075 of the wrong way (see README, "How a page is read").
ORIENT_LINES = 8
ORIENT_FIRST = 4
ORIENT_CLEAR = 0.15
ORIENT_MARGIN = 0.01


def _way_up(crops: list, texts: list, recognizer) -> tuple[tuple[float, float], float]:
    """((mean best-path confidence of the page's longest lines as cut, the same turned by 180
    degrees), the larger of the two readings' confidently read characters: best-path confidence x
    length, summed). The turned lines are decoded greedily: only their confidence is used."""
    sample = sorted(range(len(crops)), key=lambda i: -crops[i].image.shape[1])[:ORIENT_LINES]
    if not sample:
        return (0.0, 0.0), 0.0
    as_cut, turned = [texts[i] for i in sample], []
    for part in (sample[:ORIENT_FIRST], sample[ORIENT_FIRST:]):
        if not part:
            break
        turned += recognizer.recognize([np.ascontiguousarray(crops[i].image[::-1, ::-1]) for i in part], decoder="greedy",
                                       fit=False)
        gap = np.mean([t.path_confidence for t in as_cut[:len(turned)]]) - np.mean([t.path_confidence for t in turned])
        if abs(gap) > ORIENT_CLEAR:
            break
    means = tuple(float(np.mean([t.path_confidence for t in read[:len(turned)]])) for read in (as_cut, turned))
    return means, max(sum(t.path_confidence * len(t.text) for t in read) for read in (as_cut, turned))


def _looks_negative(page: Page, cfg: RunConfig) -> bool:
    """Whether the page looks like a negative: judged on the sheet alone when the paper stage cuts
    one out (a dark desk around a photographed page is not a dark ground)."""
    if not looks_negative(page.image):
        return False
    return not cfg.preprocess.paper or looks_negative(crop_paper(page).image)


def upright(page: Page, cfg: RunConfig, recognizer, read: tuple) -> tuple:
    """(prepared page, lines, crops, texts) of the page read the right way up (``read``: as given).
    A page whose ink suggests sideways lines is also read turned a quarter, and one that looks like
    a negative is also read inverted (and inverted and turned a quarter, when the inverted page's
    ink suggests sideways lines); the reading with more confidently read characters wins."""
    def sideways(prepared: Page) -> bool:
        return prepared.ink is not None and is_quarter_turned(prepared.ink, cfg.preprocess.max_deskew_degrees)

    readings = [(read, *_way_up(read[2], read[3], recognizer))]
    others = [turn(page, 1)] if sideways(read[0]) else []
    negative = invert(page) if _looks_negative(page, cfg) else None
    if negative is not None:
        others.append(negative)
    for other in others:
        prepared, found, crops = segment_page(other, cfg)
        texts = recognizer.recognize([c.image for c in crops], fit=False)
        readings.append(((prepared, found, crops, texts), *_way_up(crops, texts, recognizer)))
        # A negative's ink is its ground, so whether its lines run sideways shows only once inverted.
        if other is negative and sideways(prepared):
            others.append(turn(other, 1))
    (prepared, found, crops, texts), (as_cut, turned), _ = max(readings, key=lambda r: r[2])
    if turned > as_cut + ORIENT_MARGIN:
        prepared = turn(prepared, 2)
        found, crops = cut_lines(prepared)
        texts = recognizer.recognize([c.image for c in crops], fit=False)
    return prepared, found, crops, texts


def _keep_image(page: Page, cfg: RunConfig) -> bytes | None:
    """The decoded page as JPEG, only for formats that embed the page (searchable PDF)."""
    if not any(WRITERS[fmt].needs_images for fmt in cfg.formats):
        return None
    ok, data = cv2.imencode(".jpg", page.image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return data.tobytes() if ok else None


def recognize_file(input_file: InputFile, cfg: RunConfig, recognizer, early: EarlyPage | None = None) -> DocumentResult:
    """All pages of one input file. Raises InputError when the file cannot be read."""
    saver = StageSaver(cfg.save_stages, input_file) if cfg.save_stages else None
    page_errors: list[InputError] = []
    pages = [recognize_page(page, cfg, recognizer, saver,
                            early.take(input_file.path, page.number, cfg) if early and not saver else None)
             for page in iter_pages(input_file.path, cfg.dpi, cfg.preprocess.exif_orientation, page_errors.append)]
    if page_errors and not pages:
        raise page_errors[0]
    return DocumentResult(input_file.display, pages, [str(e) for e in page_errors])


def outputs_exist(paths: dict[str, Path], cfg: RunConfig) -> bool:
    """True when an input is skipped: every output it would get is there already (and no
    --overwrite or --stdout)."""
    return not cfg.to_stdout and not cfg.overwrite and all(p.exists() for p in paths.values())


def process_file(f: InputFile, paths: dict[str, Path], cfg: RunConfig, recognizer, run_info: RunInfo,
                 emit: Callable[[str], None] | None = None, early: EarlyPage | None = None) -> FileOutcome:
    """One input file start to end: skip it when its outputs exist, recognise it, write its outputs.

    Every failure that concerns only this file ends up in the outcome; model and device errors,
    which concern the whole batch, are raised. Used by the local loop and by distributed workers.
    """
    outcome = FileOutcome(f)
    if outputs_exist(paths, cfg):
        outcome.skipped = True
        return outcome
    try:
        outcome.result = recognize_file(f, cfg, recognizer, early)
    except InputError as exc:
        outcome.error = str(exc)
    except OcrError:
        raise  # model/device problems concern the whole batch
    except Exception as exc:  # noqa: BLE001 - one file's unexpected failure must not end the batch
        detail = " ".join(str(exc).split())[:200]
        outcome.error = f"{f.display}: could not be processed ({type(exc).__name__}: {detail})"
    if outcome.result is not None:
        try:
            if cfg.to_stdout:
                for fmt in cfg.formats:
                    emit(WRITERS[fmt].render_stdout(outcome.result, run_info))
            else:
                for fmt, path in paths.items():
                    writer = WRITERS[fmt]
                    outcome.written += write_output(path, writer, writer.render(outcome.result, run_info))
        except OutputError as exc:
            outcome.error = str(exc)
            outcome.output_error = True
        if outcome.result.page_errors and not outcome.error:
            outcome.error = "; ".join(outcome.result.page_errors) + "; its other pages were transcribed"
    return outcome


def run_batch(files: list[InputFile], cfg: RunConfig, recognizer, run_info: RunInfo,
              emit: Callable[[str], None] | None = None, early: EarlyPage | None = None) -> Iterator[FileOutcome]:
    """Process files in order, yielding one outcome each; a failing file never stops the batch.

    With ``cfg.to_stdout`` the rendered results go to ``emit`` instead of files. ``early``: the
    first page, segmented while the recognizer loaded.
    """
    targets = output_paths(files, cfg)
    for f in files:
        yield process_file(f, targets[f.path], cfg, recognizer, run_info, emit, early)
