import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import LINES, photograph, render_page
from ocrcli.config import PreprocessConfig, RunConfig
from ocrcli.documents import Page
from ocrcli.inputs import resolve_inputs
from ocrcli.output import RunInfo, atomic_write
from ocrcli.pipeline import _looks_negative, output_paths, run_batch
from ocrcli.preprocess import looks_negative

RUN = RunInfo("fake", "0" * 64, "cpu")


def _batch(paths, cfg, recognizer):
    files = resolve_inputs([str(p) for p in paths]).files
    emitted = []
    outcomes = list(run_batch(files, cfg, recognizer, RUN, emitted.append))
    return outcomes, emitted


def test_page_goes_through_every_stage_to_txt_and_json(tmp_path, fake_recognizer, page_png):
    cfg = RunConfig(formats=("txt", "json"), output_dir=tmp_path / "out")
    outcomes, _ = _batch([page_png], cfg, fake_recognizer)
    assert outcomes[0].error is None
    txt = (tmp_path / "out" / "page.txt").read_text(encoding="utf-8")
    assert len(txt.splitlines()) == len(LINES)
    doc = json.loads((tmp_path / "out" / "page.json").read_text(encoding="utf-8"))
    assert doc["path"] == str(page_png) and doc["model"]["id"] == "fake"
    page = doc["pages"][0]
    assert page["number"] == 1 and page["width"] == 1200
    assert [s["step"] for s in page["preprocessing"]][0] == "binarize"
    for line in page["lines"]:
        x0, y0, x1, y1 = line["bbox"]
        assert 0 <= x0 < x1 <= page["width"] and 0 <= y0 < y1 <= page["height"]
        assert 0.0 <= line["confidence"] <= 1.0 and len(line["polygon"]) == 4
        assert [w["text"] for w in line["words"]] == line["text"].split()
        lefts = [w["bbox"][0] for w in line["words"]]
        assert lefts == sorted(lefts) and x0 <= lefts[0] and line["words"][-1]["bbox"][2] <= x1


def test_bad_file_fails_alone(tmp_path, fake_recognizer, page_png):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    cfg = RunConfig(output_dir=tmp_path / "out")
    outcomes, _ = _batch([bad, page_png], cfg, fake_recognizer)
    assert outcomes[0].error and "bad.png" in outcomes[0].error and "\n" not in outcomes[0].error
    assert outcomes[1].error is None
    assert (tmp_path / "out" / "page.txt").exists() and not (tmp_path / "out" / "bad.txt").exists()


def test_existing_outputs_are_skipped_unless_overwrite(tmp_path, fake_recognizer, page_png):
    cfg = RunConfig(output_dir=tmp_path / "out", overwrite=False)
    _batch([page_png], cfg, fake_recognizer)
    calls = fake_recognizer.calls
    outcomes, _ = _batch([page_png], cfg, fake_recognizer)
    assert outcomes[0].skipped and fake_recognizer.calls == calls
    outcomes, _ = _batch([page_png], RunConfig(output_dir=tmp_path / "out", overwrite=True), fake_recognizer)
    assert not outcomes[0].skipped and fake_recognizer.calls == 2 * calls  # read again, as the first time


def test_same_stem_inputs_do_not_collide(tmp_path):
    for name in ("1.jpg", "1.png", "2.png"):
        (tmp_path / name).write_bytes(b"x")
    files = resolve_inputs([str(tmp_path)]).files
    targets = output_paths(files, RunConfig(formats=("txt",)))
    names = sorted(t["txt"].name for t in targets.values())
    assert names == ["1.jpg.txt", "1.png.txt", "2.txt"]


def test_multipage_tiff_pages_are_separated_by_form_feed(tmp_path, fake_recognizer):
    frames = [Image.fromarray(render_page(LINES[:2])) for _ in range(3)]
    path = tmp_path / "scan.tif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    cfg = RunConfig(to_stdout=True)
    outcomes, emitted = _batch([path], cfg, fake_recognizer)
    assert emitted[0].count("\f") == 2


@pytest.mark.parametrize("name, options", [("scan.png", {}), ("scan.tif", {"compression": "group4"})])
def test_black_and_white_scans_are_read(tmp_path, fake_recognizer, name, options):
    """A 1-bit scan (fax-style TIFF, thresholded PNG): ink and paper are two values only."""
    path = tmp_path / name
    Image.fromarray(render_page()).point(lambda v: 255 if v > 128 else 0).convert("1").save(path, **options)
    outcomes, _ = _batch([path], RunConfig(output_dir=tmp_path / "out"), fake_recognizer)
    assert outcomes[0].error is None
    assert len((tmp_path / "out" / "scan.txt").read_text(encoding="utf-8").splitlines()) == len(LINES)


def test_line_layout_reads_each_image_as_one_line(tmp_path, fake_recognizer, line_pngs):
    cfg = RunConfig(layout="line", formats=("json",), to_stdout=True)
    outcomes, emitted = _batch(line_pngs, cfg, fake_recognizer)
    rows = [json.loads(e) for e in emitted]
    assert [r["path"] for r in rows] == [str(p) for p in line_pngs]
    assert all(len(r["pages"][0]["lines"]) == 1 and "\n" not in r["text"] for r in rows)


def test_only_crops_the_segmenter_did_not_cut_have_their_rows_fitted(tmp_path, fake_recognizer, page_png, line_pngs):
    """The segmenter chooses its crops' rows itself (seams, a quarter-letter margin): the recognizer
    trims only images handed in as lines."""
    _batch([page_png], RunConfig(formats=("json",), to_stdout=True), fake_recognizer)
    assert len(fake_recognizer.fits) >= 2 and not any(fake_recognizer.fits)  # the lines, the turned lines
    fake_recognizer.fits.clear()
    _batch(line_pngs, RunConfig(layout="line", formats=("json",), to_stdout=True), fake_recognizer)
    assert fake_recognizer.fits and all(fake_recognizer.fits)


def test_save_stages_writes_each_stage_and_the_lines(tmp_path, fake_recognizer, page_png):
    cfg = RunConfig(to_stdout=True, save_stages=tmp_path / "stages")
    _batch([page_png], cfg, fake_recognizer)
    names = sorted(p.name for p in (tmp_path / "stages").iterdir())
    for stage in ("binarize", "upscale", "deskew", "denoise", "lines"):
        if stage == "upscale":
            continue  # upscale only runs on small text; this page's text is large enough
        assert any(stage in n for n in names), (stage, names)


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    atomic_write(target, "first\n")

    class Boom(Exception):
        pass

    import os

    real_replace = os.replace

    def failing_replace(src, dst):
        raise Boom()

    monkeypatch.setattr(os, "replace", failing_replace)
    try:
        atomic_write(target, "second\n")
    except Boom:
        pass
    monkeypatch.setattr(os, "replace", real_replace)
    assert target.read_text() == "first\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary file left behind


def test_blank_page_gives_empty_text_not_an_error(tmp_path, fake_recognizer):
    path = tmp_path / "blank.png"
    Image.fromarray(np.full((900, 700), 250, np.uint8)).save(path)
    outcomes, emitted = _batch([path], RunConfig(to_stdout=True), fake_recognizer)
    assert outcomes[0].error is None and emitted == [""]


def test_json_output_validates_against_the_schema(tmp_path, fake_recognizer, page_png):
    import jsonschema

    schema = json.loads((Path(__file__).resolve().parent.parent / "ocrcli" / "schemas" / "ocrcli-output.schema.json").read_text())
    outcomes, emitted = _batch([page_png], RunConfig(formats=("json",), to_stdout=True), fake_recognizer)
    doc = json.loads(emitted[0])
    jsonschema.validate(doc, schema)
    doc["pages"][0]["lines"][0]["confidence"] = 2.0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)


def _texts_without_and_with_fragments(tmp_path, page, recognizer_type) -> dict[bool, list[str]]:
    """The page's .txt lines as read by a fresh ``recognizer_type()``, by whether --keep-fragments
    was given."""
    texts = {}
    for keep in (False, True):
        cfg = RunConfig(formats=("txt",), output_dir=tmp_path / f"out{keep}", keep_fragments=keep)
        outcomes, _ = _batch([page], cfg, recognizer_type())
        assert outcomes[0].error is None
        texts[keep] = (tmp_path / f"out{keep}" / "page.txt").read_text(encoding="utf-8").splitlines()
    return texts


def test_short_low_confidence_lines_are_dropped_unless_kept(tmp_path, page_png):
    from conftest import FakeRecognizer
    from ocrcli.pipeline import is_fragment
    from ocrcli.recognition.engine import LineText

    assert is_fragment("de 7", 0.1) and is_fragment("Je suit de", 0.29)
    assert not is_fragment("de 7", 0.5)  # confident: a real short line (a date, a number)
    assert not is_fragment("Ceci est mon testament", 0.1)  # long: kept whatever its confidence
    assert is_fragment("M", 0.45) and not is_fragment("M", 0.9)  # a lone doubtful character; a confident one
    # a lone stroke (a tick, a ditto mark) however confident; a lone digit or two are kept
    assert is_fragment("1", 0.95) and is_fragment(" - ", 0.9)
    assert not is_fragment("9", 0.9) and not is_fragment("12", 0.9)
    # a rule's remnant read as "7" in a box 10 heights wide; the same box with a whole line's text
    from ocrcli.documents import BBox

    assert is_fragment("7", 0.9, BBox(0, 0, 800, 80)) and not is_fragment("7", 0.9, BBox(0, 0, 80, 80))
    assert not is_fragment("Ceci est mon testament", 0.9, BBox(0, 0, 800, 80))
    assert not is_fragment("12 mai", 0.9, BBox(0, 0, 300, 60))

    class Doubtful(FakeRecognizer):
        """Reads the first line as a low-confidence fragment, the others as confident text."""

        def recognize(self, crops, decoder=None, fit=True):
            out = super().recognize(crops, decoder)
            return [LineText("3 75", 0.12, (1.0,) * 4, (0.12,) * 4)] + out[1:]

    texts = _texts_without_and_with_fragments(tmp_path, page_png, Doubtful)
    assert texts[True][0] == "3 75" and len(texts[True]) == len(LINES)
    assert "3 75" not in texts[False] and len(texts[False]) == len(LINES) - 1


def test_a_lone_stroke_is_dropped_unless_fragments_are_kept(tmp_path, page_png):
    """A confident lone "1" among the lines is a tick or a ditto mark: dropped (kept with --keep-fragments)."""
    from conftest import FakeRecognizer
    from ocrcli.recognition.engine import LineText

    class Ticks(FakeRecognizer):
        """Reads the page's second line as "1", confidently."""

        def recognize(self, crops, decoder=None, fit=True):
            out = super().recognize(crops, decoder)
            return [out[0], LineText("1", 0.95, (1.0,), (0.95,))] + out[2:] if self.calls == 1 else out

    texts = _texts_without_and_with_fragments(tmp_path, page_png, Ticks)
    assert texts[True][1] == "1" and len(texts[True]) == len(LINES)
    assert texts[False] == texts[True][:1] + texts[True][2:]


def test_first_page_segmented_early_is_the_page_the_batch_would_segment(tmp_path):
    """The CLI segments the first page in a thread while the model loads; the batch takes that
    result for that page only, once, and a file that cannot be read is left to the normal path."""
    from ocrcli.pages import iter_pages
    from ocrcli.pipeline import EarlyPage, segment_page

    path = tmp_path / "page.png"
    Image.fromarray(render_page(LINES)).save(path)
    cfg = RunConfig()
    files = resolve_inputs([str(path)]).files
    early = EarlyPage(files[0], cfg)
    assert early.take(tmp_path / "other.png", 1, cfg) is None
    taken = early.take(path, 1, cfg)
    _, lines, crops = segment_page(next(iter_pages(path)), cfg)
    assert taken is not None and [ln.bbox for ln in taken[1]] == [ln.bbox for ln in lines]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(taken[2], crops))
    assert early.take(path, 1, cfg) is None  # once
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    assert EarlyPage(resolve_inputs([str(broken)]).files[0], cfg).take(broken, 1, cfg) is None


class _ReadsByHeight:
    """A recognizer whose confidence depends on the crop's height: ``tall`` (over 70 px: two lines
    found as one, on these 36-px pages) or short crops read confidently, the others doubtfully."""

    device, model_id, sha256 = "cpu", "fake", "0" * 64

    def __init__(self, tall_reads_well: bool) -> None:
        self.tall_reads_well = tall_reads_well

    def recognize(self, crops, decoder=None, fit=True):
        from ocrcli.recognition.engine import LineText

        out = []
        for c in crops:
            p = 0.9 if (c.shape[0] > 70) == self.tall_reads_well else 0.4
            text = f"line {c.shape[1]}x{c.shape[0]}"
            xs = tuple((i + 0.5) * c.shape[1] / len(text) for i in range(len(text)))  # spread over the crop
            out.append(LineText(text, p, xs, (p,) * len(text)))
        return out


def _two_lines_found_as_one(monkeypatch):
    """Make the page's line finder return its second and third lines as one line."""
    import ocrcli.pipeline as pipeline
    from ocrcli.documents import BBox, Line

    find = pipeline.find_lines

    def merging(page):
        lines = find(page)
        a, b = lines[1].bbox, lines[2].bbox
        return lines[:1] + [Line(BBox(min(a.x0, b.x0), a.y0, max(a.x1, b.x1), b.y1))] + lines[3:]

    monkeypatch.setattr(pipeline, "find_lines", merging)


@pytest.mark.parametrize("tall_reads_well", [False, True])
def test_a_tall_line_is_read_cut_in_two_and_kept_so_when_the_halves_read_better(tmp_path, monkeypatch, page_png, tall_reads_well):
    def boxes(out):
        cfg = RunConfig(formats=("json",), output_dir=tmp_path / out)
        outcomes, _ = _batch([page_png], cfg, _ReadsByHeight(tall_reads_well))
        assert outcomes[0].error is None
        return [ln["bbox"] for ln in json.loads((tmp_path / out / "page.json").read_text(encoding="utf-8"))["pages"][0]["lines"]]

    found = boxes("as-found")
    _two_lines_found_as_one(monkeypatch)
    merged = boxes("merged")
    if tall_reads_well:  # the whole reads better than its halves: kept as one line
        assert len(merged) == len(LINES) - 1 and merged[1][3] - merged[1][1] > 70
        return
    assert len(found) == len(merged) == len(LINES)  # cut in two again: the page's lines, in reading order
    for (x0, y0, x1, y1), (u0, v0, u1, v1) in zip(found, merged):  # the halves' boxes: the lines' rows, their ink's width
        assert abs(v0 - y0) <= 2 and abs(v1 - y1) <= 2
        assert x0 <= u0 and u1 <= x1 and u1 - u0 > 0.85 * (x1 - x0)


def test_the_tall_line_check_can_read_only_the_tall_lines(page_png):
    """`ocr adapt` has no readings of its lines yet: split_merged reads the tall ones whole itself."""
    from ocrcli.documents import BBox, Line
    from ocrcli.pages import iter_pages
    from ocrcli.pipeline import segment_page, split_merged
    from ocrcli.segment import line_crops

    prepared, found, crops = segment_page(next(iter_pages(page_png)), RunConfig())
    a, b = found[1].bbox, found[2].bbox
    merged = found[:1] + [Line(BBox(min(a.x0, b.x0), a.y0, max(a.x1, b.x1), b.y1))] + found[3:]
    lines, cut, texts = split_merged(prepared, merged, line_crops(prepared, merged), None, _ReadsByHeight(False))
    assert texts is None and len(lines) == len(cut) == len(LINES)
    lines, _, texts = split_merged(prepared, merged, line_crops(prepared, merged), None, _ReadsByHeight(True))
    assert texts is None and len(lines) == len(LINES) - 1


def test_a_column_of_short_marks_does_not_make_the_lines_tall(page_png):
    """Twenty stitch marks down the page's edge, each found as a short line, outnumber the real
    lines; the typical line height is weighed by width, so no real line is read again in halves."""
    from ocrcli.documents import BBox, Line
    from ocrcli.pages import iter_pages
    from ocrcli.pipeline import segment_page, split_merged

    class Counting(_ReadsByHeight):
        read = 0

        def recognize(self, images, decoder=None, fit=True):
            self.read += len(images)
            return super().recognize(images, decoder)

    prepared, found, crops = segment_page(next(iter_pages(page_png)), RunConfig())
    marks = [Line(BBox(2, 20 + 30 * k, 30, 30 + 30 * k)) for k in range(20)]
    lines, cut = found + marks, crops + crops[:1] * len(marks)
    reader = Counting(False)
    out, _, _ = split_merged(prepared, lines, cut, _ReadsByHeight(False).recognize([c.image for c in cut]), reader)
    assert out == lines and reader.read == 0


class _ReadsWords:
    """Reads crops under 30 px tall (the small word written between lines below) as ``word`` at
    ``confidence``, the lines (36-px text) as their size at 0.9."""

    device, model_id, sha256 = "cpu", "fake", "0" * 64

    def __init__(self, word: str, confidence: float) -> None:
        self.word, self.confidence = word, confidence

    def recognize(self, crops, decoder=None, fit=True):
        from ocrcli.recognition.engine import LineText

        out = []
        for c in crops:
            text, p = (self.word, self.confidence) if c.shape[0] < 30 else (f"line {c.shape[1]}x{c.shape[0]}", 0.9)
            xs = tuple((i + 0.5) * c.shape[1] / len(text) for i in range(len(text)))  # spread over the crop
            out.append(LineText(text, p, xs, (p,) * len(text)))
        return out


@pytest.mark.parametrize("word, confidence, kept", [("inserted", 0.9, True), ("inserted", 0.3, False), ("in", 0.9, False)])
def test_a_word_written_between_lines_is_read_as_a_line_of_its_own(tmp_path, word, confidence, kept):
    """Kept when it reads confidently as a word: after the line above it, and the line below it
    (whose box took it in) read again without it; else the page reads as if it were not found."""
    from PIL import ImageDraw, ImageFont

    im = Image.fromarray(render_page(LINES, size=36, spacing=2.6))
    ImageDraw.Draw(im).text((400, 80 + int(36 * 2.6) - 14), "inserted here", fill=25, font=ImageFont.load_default(size=22))
    im.save(tmp_path / "page.png")
    cfg = RunConfig(formats=("json",), output_dir=tmp_path / "out")
    outcomes, _ = _batch([tmp_path / "page.png"], cfg, _ReadsWords(word, confidence))
    assert outcomes[0].error is None
    lines = json.loads((tmp_path / "out" / "page.json").read_text(encoding="utf-8"))["pages"][0]["lines"]
    texts = [ln["text"] for ln in lines]
    if not kept:
        assert len(texts) == len(LINES) and word not in texts
        assert lines[1]["bbox"][3] - lines[1]["bbox"][1] > 45  # the second line's box still takes the word in
        return
    assert len(texts) == len(LINES) + 1 and texts[1] == word
    x0, y0, x1, y1 = lines[1]["bbox"]
    assert 390 <= x0 and x1 <= 560 and y1 <= lines[2]["bbox"][1] + 15
    assert lines[2]["bbox"][3] - lines[2]["bbox"][1] < 45  # the line below, cut and read without the word


def test_a_dark_desk_around_a_photographed_sheet_does_not_make_it_a_negative():
    """Most of this photo is dark desk, which alone would have the page read inverted as well; the
    check looks at the sheet as the paper stage cuts it out (and at the whole frame without it)."""
    photo, _ = photograph(render_page(LINES * 3), "dark")
    photo = np.pad(photo, 400, constant_values=60)
    page = Page(photo, 1, (photo.shape[1], photo.shape[0]))
    assert looks_negative(photo)
    assert not _looks_negative(page, RunConfig())
    assert _looks_negative(page, RunConfig(preprocess=PreprocessConfig(paper=False)))


def test_a_line_is_reported_as_wide_as_what_was_read_in_it():
    from ocrcli.documents import BBox
    from ocrcli.pipeline import TEXT_MARGIN, reading_spans, text_span
    from ocrcli.recognition.engine import LineText

    box, crop = BBox(100, 50, 900, 90), BBox(80, 40, 920, 100)
    margin = int(TEXT_MARGIN * box.height)
    read = LineText("ab cd", 0.9, (120.0, 140.0, 160.0, 180.0, 200.0), (0.9,) * 5)
    # half a character pitch (10 px) before "a" and after "d": crop x 110-210, page x 190-290
    assert text_span(box, crop, reading_spans(read)) == BBox(190 - margin, 50, 290 + margin, 90)
    assert text_span(box, crop, reading_spans(LineText("", 0.0))) == box  # nothing read: the finder's box
    spread = LineText("ab", 0.9, (5.0, 830.0), (0.9, 0.9))
    assert text_span(box, crop, reading_spans(spread)) == box  # never wider than the line's box
