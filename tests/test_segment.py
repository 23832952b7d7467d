import numpy as np
import pytest

from conftest import LINES, render_page
from ocrcli.config import PreprocessConfig
from ocrcli.documents import Page
from ocrcli.preprocess import GRAINY, binarize, flatten_illumination, preprocess, rotate
from ocrcli.segment import find_lines, line_crops


def _lines(image, **cfg):
    page = preprocess(Page(image, 1, (image.shape[1], image.shape[0])), PreprocessConfig(**cfg))
    return page, find_lines(page)


def test_finds_each_line_in_reading_order():
    page, lines = _lines(render_page())
    assert len(lines) == len(LINES)
    tops = [ln.bbox.y0 for ln in lines]
    assert tops == sorted(tops)
    for ln in lines:
        assert 20 < ln.bbox.height < 90  # one text line (36 px font), not two merged


def test_ruled_paper_lines_are_not_text():
    page, lines = _lines(render_page(ruled=True))
    assert len(lines) == len(LINES)


def test_skewed_page_still_gives_one_box_per_line():
    skewed = rotate(render_page(), 7.0, 245)
    page, lines = _lines(skewed)
    assert len(lines) == len(LINES)


def test_blank_page_has_no_lines():
    blank = np.full((1000, 800), 240, np.uint8)
    page, lines = _lines(blank)
    assert lines == []


def test_crops_hold_one_line_and_mask_neighbours():
    tight = render_page(spacing=1.25)  # descenders nearly touch the next line's ascenders
    page, lines = _lines(tight, deskew=False)
    assert len(lines) == len(LINES)
    crops = line_crops(page, lines)
    assert len(crops) == len(lines)
    for crop, line in zip(crops, lines):
        assert crop.image.dtype == np.uint8 and crop.image.ndim == 2
        assert crop.image.shape[0] < 2.2 * line.bbox.height
        assert crop.box.x0 <= line.bbox.x0 and crop.box.x1 >= line.bbox.x1
        assert crop.image.shape == (crop.box.height, crop.box.width)


REGISTER_ROWS = [("1344", "Depot de piece"), ("1345", "Union Parisienne"), ("1346", "Saisie immobiliere"), ("1347", "Inventaire")]


def _register(rule_spans):
    """A register page: a column of numbers and a column of short entries, 120 px apart, with a
    column rule at x 195 (100 px right of the numbers) drawn along the given (top, bottom) spans.
    The columns are close enough that the word smear alone would join each row into one line."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=32)
    im = Image.new("L", (1000, 700), 245)
    draw = ImageDraw.Draw(im)
    for i, (number, text) in enumerate(REGISTER_ROWS):
        draw.text((80, 100 + i * 120), number, fill=25, font=font)
        draw.text((215, 100 + i * 120), text, fill=25, font=font)
    for top, bottom in rule_spans:
        draw.line([(195, top), (195, bottom)], fill=30, width=3)
    return np.asarray(im)


def test_table_cells_split_at_vertical_rules():
    page, lines = _lines(_register([(40, 660)]), deskew=False)
    rule = 195 * page.transform[0, 0]  # the rule's column in the preprocessed page (it may be upscaled)
    assert len(lines) == 2 * len(REGISTER_ROWS)
    for ln in lines:
        assert ln.bbox.x1 <= rule or ln.bbox.x0 >= rule  # no line crosses the rule
    # Reading order: the rule runs along the whole table, so column by column (as archives
    # transcribe registers): the numbers top to bottom, then the entries.
    assert [ln.bbox.x0 < rule for ln in lines] == [True] * len(REGISTER_ROWS) + [False] * len(REGISTER_ROWS)
    assert [ln.bbox.y0 for ln in lines[:len(REGISTER_ROWS)]] == sorted(ln.bbox.y0 for ln in lines[:len(REGISTER_ROWS)])


def test_a_column_rule_that_fades_for_a_row_still_parts_its_cells():
    """The register's column rule with a gap (faded ink, a break in the printing) beside one row: the
    rest of the rule shows it is a column rule, so that row's cells are still two lines."""
    from ocrcli.segment import SegmentConfig

    page, lines = _lines(_register([(40, 310), (390, 660)]), deskew=False)  # no rule beside the third row (y 340-372)
    rule = 195 * page.transform[0, 0]
    assert len(lines) == 2 * len(REGISTER_ROWS)
    assert all(ln.bbox.x1 <= rule or ln.bbox.x0 >= rule for ln in lines)
    joined = find_lines(page, SegmentConfig(rule_gap=0))  # without closing the gap, the row is one line
    assert len(joined) == 2 * len(REGISTER_ROWS) - 1


def test_a_table_header_is_read_across_before_the_columns():
    """A register with printed column titles between its top rule and a rule under them: the titles
    are read row by row first (as the archives transcribe them), then the entries column by column."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=32)
    im = Image.new("L", (1300, 1100), 245)
    draw = ImageDraw.Draw(im)
    rules = [60, 250, 520, 1240]
    for x in rules:
        draw.line([(x, 80), (x, 1060)], fill=30, width=3)
    for y in (80, 270):  # the table's top rule and the rule under the header
        draw.line([(rules[0], y), (rules[-1], y)], fill=30, width=3)
    titles = [(80, 100, "Nos"), (280, 100, "Dates"), (560, 100, "Nature"), (80, 170, "du rep"), (280, 170, "des actes")]
    for x, y, text in titles:
        draw.text((x, y), text, fill=25, font=font)
    entries = [("1344", "12", "Depot de piece"), ("1345", "14", "Union Parisienne"),
               ("1346", "15", "Saisie immobiliere"), ("1347", "20", "Inventaire")]
    for i, row in enumerate(entries):
        for x, text in zip((80, 280, 560), row):
            draw.text((x, 330 + i * 170), text, fill=25, font=font)
    page, lines = _lines(np.asarray(im), deskew=False)
    scale = page.transform[0, 0]
    assert len(lines) == len(titles) + 3 * len(entries)
    header, body = lines[:len(titles)], lines[len(titles):]
    assert all(ln.bbox.y1 < 270 * scale for ln in header)
    # Titles row by row: the first row's three, then the second row's two, left to right.
    assert [ln.bbox.y0 < 150 * scale for ln in header] == [True, True, True, False, False]
    assert [ln.bbox.x0 for ln in header[:3]] == sorted(ln.bbox.x0 for ln in header[:3])
    # Then the columns: numbers top to bottom, then dates, then entries.
    columns = [int(np.searchsorted(np.array(rules) * scale, ln.bbox.x0)) for ln in body]
    assert columns == [1] * 4 + [2] * 4 + [3] * 4


def test_a_short_rule_does_not_make_columns():
    """A rule beside only part of the text (a margin stroke, a box around one entry) leaves the
    page read row by row."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=32)
    im = Image.new("L", (1000, 820), 245)
    draw = ImageDraw.Draw(im)
    for i in range(6):
        draw.text((80, 100 + i * 120), f"{1344 + i}", fill=25, font=font)
        draw.text((215, 100 + i * 120), "an entry", fill=25, font=font)
    draw.line([(195, 80), (195, 330)], fill=30, width=3)  # along the first two rows only
    page, lines = _lines(np.asarray(im), deskew=False)
    rule = 195 * page.transform[0, 0]
    assert len(lines) >= 8  # the rule splits the first two rows; the others may be one line each
    tops = [ln.bbox.y0 for ln in lines]
    assert tops == sorted(tops)  # row by row
    assert [ln.bbox.x0 < rule for ln in lines[:4]] == [True, False, True, False]


def test_text_written_up_the_margin_is_not_read_as_lines():
    # A letter with a note written up its left margin (as on the poilus wills): cursive, so each of
    # its lines is one connected stroke, drawn here as a wavy line through the letters.
    import cv2

    body = render_page(LINES * 2, width=1400, margin=80)
    note = render_page(["a note in the margin of it", "and a second line of it"], width=900, margin=10).copy()
    for y in (28, 108):
        xs = np.arange(10, 800)
        pts = np.stack([xs, y + (6 * np.sin(xs / 9.0)).astype(int)], axis=1).astype(np.int32)
        cv2.polylines(note, [pts], False, 25, 3)
    note = np.ascontiguousarray(np.rot90(note))
    page_img = np.full((max(body.shape[0], note.shape[0] + 60), body.shape[1] + note.shape[1] + 40), 245, np.uint8)
    page_img[: body.shape[0], note.shape[1] + 40:] = body
    page_img[60:60 + note.shape[0], 10:10 + note.shape[1]] = note
    page, lines = _lines(page_img, deskew=False)
    assert len(lines) == 2 * len(LINES)
    assert all(ln.bbox.x0 > note.shape[1] for ln in lines)


def test_lines_joined_by_a_long_stroke_are_split_at_their_valley():
    """Close lines where one descender runs into the next line: one blob about 1.5 line pitches
    tall, too short to be cut by height alone; the valley between the two line bodies splits it."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(render_page(spacing=1.6))
    draw = ImageDraw.Draw(im)
    pitch = int(36 * 1.6)
    for i in (0, 2):  # line 1 runs into line 2, line 3 into line 4
        y = 80 + i * pitch + 20
        draw.line([(400, y), (404, y + pitch)], fill=25, width=4)
    page, lines = _lines(np.asarray(im), deskew=False)
    assert len(lines) == len(LINES)
    for ln in lines:
        assert ln.bbox.height < 1.2 * pitch


def test_valley_split_keeps_one_line_with_tall_loops():
    from ocrcli.segment import _split_at_valleys

    body = np.exp(-0.5 * ((np.arange(60) - 30) / 6.0) ** 2) * 100
    loops = body + 15 * np.exp(-0.5 * ((np.arange(60) - 8) / 3.0) ** 2)  # ascender loops above the body
    assert _split_at_valleys(loops, pitch=40, min_peak=0.3, max_valley=0.5) == [(0, 60)]
    two = body[:45].tolist() + body[15:].tolist()  # two bodies 30 rows apart, the gap between them empty
    pieces = _split_at_valleys(np.array(two), pitch=40, min_peak=0.3, max_valley=0.5)
    assert len(pieces) == 2 and 40 <= pieces[0][1] <= 50


def test_a_stray_mark_near_a_line_does_not_stretch_its_crop():
    """A speck just above a line is near enough to count as the line's own ink (an i-dot could be
    there), but it is a tiny share of that ink: the crop stays as tall as the writing."""
    import cv2

    image = render_page().copy()
    page, lines = _lines(image, deskew=False)
    plain = line_crops(page, lines)[1]
    cv2.circle(image, (400, lines[1].bbox.y0 - 14), 3, 25, -1)
    page, lines = _lines(image, deskew=False)
    marked = line_crops(page, lines)[1]
    assert marked.box.y0 > lines[1].bbox.y0 - 14
    assert abs(marked.box.height - plain.box.height) <= 3


def test_crops_of_some_lines_are_cut_as_among_all():
    """Cutting only some lines' crops (the pipeline re-cuts the lines next to a change) gives the
    crops the whole page's cut gives them, seams with their neighbours included."""
    import cv2

    image = render_page(spacing=1.6).copy()
    page, lines = _lines(image, deskew=False)
    middle = (lines[1].bbox.x0 + lines[1].bbox.x1) // 2
    cv2.line(image, (middle, lines[1].bbox.y1 - 4), (middle, lines[2].bbox.y0 + 4), 25, 4)  # a descender into the next line
    page, lines = _lines(image, deskew=False)
    every = line_crops(page, lines)
    for wanted in ([2], [3, 1], [0, len(lines) - 1]):
        some = line_crops(page, lines, wanted=wanted)
        assert [c.box for c in some] == [every[k].box for k in wanted]
        assert all(np.array_equal(c.image, every[k].image) for c, k in zip(some, wanted))
    assert line_crops(page, lines, wanted=[]) == []


def test_lines_joined_by_a_stroke_are_parted_along_a_seam():
    """A long descender running into the next line makes one ink component of two lines: each
    crop keeps its own line and paints over the part of the stroke past the seam between them,
    the way the training lines were cut along their polygons."""
    import cv2

    image = render_page(spacing=1.6).copy()
    page, lines = _lines(image, deskew=False)
    upper, lower = lines[1].bbox, lines[2].bbox
    x = (max(upper.x0, lower.x0) + min(upper.x1, lower.x1)) // 2
    upper_mid, lower_mid = (upper.y0 + upper.y1) // 2, (lower.y0 + lower.y1) // 2
    cv2.line(image, (x, upper_mid), (x, lower_mid), 25, 4)
    page, lines = _lines(image, deskew=False)
    assert len(lines) == len(LINES)
    crops = line_crops(page, lines)
    top_crop, bottom_crop = crops[1], crops[2]
    # No ink of the upper crop at the lower line's middle row and below, and the other way round.
    rows_below = top_crop.image[max(0, lower_mid - top_crop.box.y0):]
    rows_above = bottom_crop.image[:max(0, upper_mid - bottom_crop.box.y0 + 1)]
    assert rows_below.size == 0 or rows_below.min() > 150
    assert rows_above.size == 0 or rows_above.min() > 150
    # Each crop still holds its own line's text and the stroke's part on its own side.
    assert top_crop.image[:, x - top_crop.box.x0 - 1:x - top_crop.box.x0 + 2].min() < 100
    assert bottom_crop.image[:, x - bottom_crop.box.x0 - 1:x - bottom_crop.box.x0 + 2].min() < 100


def test_a_broken_page_edge_touching_the_lines_is_not_text():
    """The dark edge of a page scanned on a darker ground, broken by short gaps (so no straight rule
    runs long enough to match it) and touching the ends of the lines: the lines are found one by
    one and end before it."""
    import cv2

    from ocrcli.segment import SegmentConfig

    image = render_page(width=1000).copy()
    page, lines = _lines(image, deskew=False)
    edge = max(ln.bbox.x1 for ln in lines) + 6
    for y in range(20, image.shape[0] - 40, 30):  # 22 px of edge, 8 px gap, not touching the image edges
        cv2.rectangle(image, (edge, y), (edge + 12, y + 22), 30, -1)
    page, lines = _lines(image, deskew=False)
    assert len(lines) == len(LINES)
    assert all(ln.bbox.x1 < edge and ln.bbox.height < 90 for ln in lines)
    unfiltered = find_lines(page, SegmentConfig(vertical_run=0))
    assert not all(ln.bbox.x1 < edge and ln.bbox.height < 90 for ln in unfiltered)


def test_specks_and_smudges_are_not_lines():
    """A blot and a short flat smudge in the margin (letters here are 21 px high), too big for the
    despeckle stage and the blob filters but under 0.6 of a letter high: on the 89 val pages such
    marks were read as "1" or "S" (page edges, rule remnants, stamp dots). The lines are found;
    the marks are not."""
    import cv2

    from ocrcli.segment import SegmentConfig

    image = render_page(width=1400).copy()
    cv2.rectangle(image, (1300, 200), (1310, 210), 30, -1)  # blot, 11 x 11 px
    cv2.rectangle(image, (1250, 400), (1300, 410), 30, -1)  # smudge, 51 x 11 px
    page, lines = _lines(image, deskew=False)
    assert len(lines) == len(LINES)
    assert all(ln.bbox.x1 < 1240 for ln in lines)
    unfiltered = find_lines(page, SegmentConfig(line_min_height=0, line_min_width=0))
    assert len(unfiltered) == len(LINES) + 2


def test_a_line_is_cut_in_two_between_the_bodies_of_two_lines_found_as_one():
    from ocrcli.documents import BBox, Line
    from ocrcli.segment import split_in_two

    page, lines = _lines(render_page(spacing=1.4), deskew=False)
    upper, lower = lines[1].bbox, lines[2].bbox
    merged = Line(BBox(min(upper.x0, lower.x0), upper.y0, max(upper.x1, lower.x1), lower.y1))
    top, bottom = split_in_two(page.ink, merged, float(np.median([ln.bbox.height for ln in lines])))
    assert upper.y1 - 2 <= top.bbox.y1 <= lower.y0 + 2 and top.bbox.y1 == bottom.bbox.y0
    for half, line in ((top.bbox, upper), (bottom.bbox, lower)):  # each half spans its line's ink (found boxes are smeared)
        assert line.x0 <= half.x0 and half.x1 <= line.x1 and half.width > 0.9 * line.width
    assert split_in_two(np.zeros_like(page.ink), merged, 30.0) is None  # no ink: nothing to cut


def test_a_large_heading_does_not_make_the_lines_below_it_specks():
    """A heading in letters two and a half times the body's outweighs three lines of body text in
    the page's letter estimate (area-weighted); a body line without capitals or descenders is then
    under 0.6 of that 'letter' high, and the speck filter dropped it."""
    from PIL import Image, ImageDraw, ImageFont

    from ocrcli.preprocess import text_height

    body = render_page(lines=LINES[:3])
    heading = Image.new("L", (body.shape[1], 180), 245)
    ImageDraw.Draw(heading).text((80, 45), "Minutes of the meeting", fill=25, font=ImageFont.load_default(size=90))
    page, lines = _lines(np.vstack([np.asarray(heading), body]), deskew=False)
    assert text_height(page.ink) > 40  # the heading's letters, not the body's (about 25 px)
    assert len(lines) == 4 and lines[0].bbox.height > 80
    assert all(20 < ln.bbox.height < 40 for ln in lines[1:])


def _columns_page(left: list[str], right: list[str], heading: str | None = None, gap: int = 80) -> np.ndarray:
    """Two columns of lines (36-px letters) side by side, ``gap`` px apart, under an optional heading."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=36)
    top = 160 if heading else 80
    im = Image.new("L", (1200 + gap, top + 80 * max(len(left), len(right)) + 80), 245)
    draw = ImageDraw.Draw(im)
    if heading:
        draw.text((80, 60), heading, fill=25, font=font)
    for i, text in enumerate(left):
        draw.text((80, top + 80 * i), text, fill=25, font=font)
    for i, text in enumerate(right):
        draw.text((600 + gap, top + 80 * i), text, fill=25, font=font)
    return np.asarray(im)


def test_two_columns_of_writing_are_read_one_after_the_other():
    """No rule between them, only a white gutter: the left column, then the right; a heading
    across both is read first."""
    left = ["The first column starts", "here and it goes on", "for a few more lines", "until it ends here."]
    right = ["Then the second one", "begins at the top and", "runs down the page", "to its own end."]
    heading = "A heading that runs across both of the two columns below"
    page, lines = _lines(_columns_page(left, right, heading), deskew=False)
    assert len(lines) == 9
    assert lines[0].bbox.x1 - lines[0].bbox.x0 > 1000  # the heading
    xs = [ln.bbox.x0 for ln in lines[1:]]
    assert all(x < 300 for x in xs[:4]) and all(x > 600 for x in xs[4:])
    assert [ln.bbox.y0 for ln in lines[1:5]] == sorted(ln.bbox.y0 for ln in lines[1:5])


def test_a_form_is_read_row_by_row():
    """Short labels beside their values (a gutter between them too): row by row, label then value."""
    page, lines = _lines(_columns_page(["Name:", "Born:", "Address:", "Date:"],
                                       ["Anna Smith", "12 May 1950", "3 High Street", "1 June 2026"]), deskew=False)
    assert len(lines) == 8
    assert [ln.bbox.x0 < 600 for ln in lines] == [True, False] * 4


def test_a_word_written_between_two_lines_is_found_on_its_own():
    from PIL import Image, ImageDraw, ImageFont

    from ocrcli.segment import interlinear

    image = render_page(LINES, size=36, spacing=2.6)
    im = Image.fromarray(image)
    pitch = int(36 * 2.6)
    # a smaller word written just above the second line, touching it: found as part of it
    ImageDraw.Draw(im).text((400, 80 + pitch - 14), "inserted here", fill=25, font=ImageFont.load_default(size=22))
    page, lines = _lines(np.asarray(im))
    words = interlinear(page, lines)
    assert len(words) == 1
    y = (words[0].bbox.y0 + words[0].bbox.y1) / 2
    above = [ln for ln in lines if (ln.bbox.y0 + ln.bbox.y1) / 2 < y]
    below = [ln for ln in lines if (ln.bbox.y0 + ln.bbox.y1) / 2 > y]
    assert above and below and words[0].bbox.width > 3 * 22
    assert interlinear(*_lines(render_page(LINES, size=36, spacing=2.6))) == []  # none on a clean page


def test_words_between_lines_are_placed_after_the_line_above_them_left_to_right():
    from ocrcli.documents import BBox, Line
    from ocrcli.segment import place_words

    blank = np.full((400, 800), 245, np.uint8)
    page = Page(blank, 1, (800, 400), ink=np.zeros_like(blank))
    lines = [Line(BBox(40, 80, 680, 120)), Line(BBox(40, 160, 680, 216)), Line(BBox(40, 270, 640, 300))]
    right, left, lower = Line(BBox(450, 150, 560, 170)), Line(BBox(60, 148, 170, 168)), Line(BBox(300, 230, 400, 250))
    placed = place_words(page, lines, [right, lower, left])
    assert placed == [lines[0], left, right, lines[1], lower, lines[2]]
    above_all = Line(BBox(100, 20, 300, 40))
    assert place_words(page, lines, [above_all])[0] is above_all


def _drifting_column(size: int = 36) -> tuple[np.ndarray, list[list[int]]]:
    """Ten lines of a register's dense column: spaced unevenly (1.1 to 2.3 font sizes apart), each
    starting at its own indent, rising across the page by its own amount and bowing, and joined to
    the next by a stroke (a descender run long), so the column is one blob of ink. Returns the
    page and each line's box."""
    from PIL import Image, ImageDraw, ImageFont

    import cv2

    texts = ["The minutes of the meeting held on", "Monday were read and approved by all", "members present. Mr Hale",
             "then moved that the hall be painted", "before the winter and the motion", "was carried. Accounts",
             "for the year showed a balance of", "forty pounds in hand after paying", "the rent and the coal bill",
             "Next meeting in March"]
    spacing = [1.2, 2.3, 1.1, 1.9, 1.3, 2.2, 1.1, 1.6, 2.0, 1.4]
    rises = [0.9, 0.4, 0.8, 0.5, 1.0, 0.3, 0.7, 0.5, 0.9, 0.6]  # in line pitches, across 700 px
    font = ImageFont.load_default(size=size)
    width, y = 1300, 100
    image = np.full((200 + int(sum(spacing) * size) + 2 * size, width), 245, np.uint8)
    masks = []
    for i, text in enumerate(texts):
        pitch = spacing[i] * size
        im = Image.new("L", (width, 2 * size), 0)
        ImageDraw.Draw(im).text((100 + 40 * i % 160, 0), text, fill=255, font=font)
        ink = np.asarray(im) > 100
        cols = np.nonzero(ink.any(axis=0))[0]
        along = np.clip((np.arange(width) - cols[0]) / 700, 0, None)
        shift = (-rises[i] * pitch * along + 0.3 * pitch * np.sin(np.pi * along)).astype(int)
        mask = np.zeros(image.shape, bool)
        for c in cols:
            mask[int(y) + shift[c] + np.nonzero(ink[:, c])[0], c] = True
        masks.append(mask)
        image[mask] = 25
        y += pitch
    for i, (a, b) in enumerate(zip(masks, masks[1:])):
        lo = max(np.nonzero(a.any(axis=0))[0][0], np.nonzero(b.any(axis=0))[0][0])
        hi = min(np.nonzero(a.any(axis=0))[0][-1], np.nonzero(b.any(axis=0))[0][-1])
        x = int(lo + (hi - lo) * (0.2 + 0.6 * (i * 0.37 % 1)))
        cv2.line(image, (x, int(np.nonzero(a[:, x - 40:x + 40].any(axis=1))[0].mean())),
                 (x + 6, int(np.nonzero(b[:, x - 40:x + 40].any(axis=1))[0].mean())), 25, 3)
    boxes = []
    for mask in masks:
        ys, xs = np.nonzero(mask)
        boxes.append([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1])
    return image, boxes


def test_a_dense_column_of_drifting_unevenly_spaced_lines_is_followed_line_by_line():
    """Cut across by height, such a column gives lines merged and lines sliced through (9 of the 10
    found, 9 of them matched, when the ridge tracker is switched off); followed along the ridges of
    its blurred ink, each line is found once, its box matching the line's (IoU >= 0.5, as in
    ``ocr eval --pages``)."""
    from ocrcli.evaluate import box_iou

    image, truth = _drifting_column()
    page, lines = _lines(image, deskew=False)
    found = [ln.bbox.to_list() for ln in lines]
    assert len(found) == len(truth)
    best = [max(range(len(found)), key=lambda k: box_iou(box, found[k])) for box in truth]
    assert len(set(best)) == len(truth)
    assert all(box_iou(box, found[k]) >= 0.5 for box, k in zip(truth, best))



def test_line_merging_by_row_bands_joins_as_a_box_by_box_search_would():
    """``_merge_same_line`` looks a box's line up only among the lines on its bands of rows; the
    result must be the plain definition's: left to right, each box joins the first line it
    overlaps by more than half vertically within the gap, passes repeated until none joins."""
    from ocrcli.segment import _merge_same_line

    def plain(boxes, gap):
        boxes = sorted(boxes, key=lambda b: b[0])
        merged = True
        while merged:
            merged, out = False, []
            for b in boxes:
                for m in out:
                    overlap = min(m[3], b[3]) - max(m[1], b[1])
                    if overlap > 0.5 * min(m[3] - m[1], b[3] - b[1]) and b[0] - m[2] < gap and m[0] - b[2] < gap:
                        m[:] = [min(m[0], b[0]), min(m[1], b[1]), max(m[2], b[2]), max(m[3], b[3])]
                        merged = True
                        break
                else:
                    out.append(list(b))
            boxes = out
        return boxes

    rng = np.random.default_rng(5)
    for _ in range(30):
        n = int(rng.integers(1, 300))
        x0, y0 = rng.integers(0, 2000, n), rng.integers(0, 1500, n)
        w, h = rng.integers(3, 200, n), rng.integers(3, 80, n)
        boxes = [[int(a), int(b), int(a + c), int(b + d)] for a, b, c, d in zip(x0, y0, w, h)]
        gap = float(rng.uniform(5, 120))
        assert _merge_same_line([list(b) for b in boxes], gap) == plain([list(b) for b in boxes], gap)


def _speckled(image, share, seed=0):
    rng = np.random.default_rng(seed)
    out = image.copy()
    dots = rng.random(image.shape) < share
    out[dots] = rng.integers(0, 60, int(dots.sum()))
    return out


def test_a_sheet_of_specks_is_not_taken_for_tiny_letters():
    """Salt-and-pepper specks (a dusty scanner glass, a noisy sensor) with no writing: clusters of
    specks pass for letters 3-4 px high, and the page was enlarged 4x to make them 20 px and read
    as thousands of lines (a 1000 x 1250 px sheet: 24,490 lines of "d", 4 min). Letter-sized
    components hold under a quarter of the ink here, so the mask has no letter height: the page is
    not enlarged and no line is found. Writing under the same specks is still found, line by line."""
    page, lines = _lines(_speckled(np.full((500, 400), 235, np.uint8), 0.05))
    assert all(step["step"] != "upscale" for step in page.steps)
    assert lines == []
    page, lines = _lines(_speckled(render_page(), 0.02), deskew=False)
    assert len(lines) == len(LINES)


def test_specks_on_a_page_of_small_writing_are_painted_out_not_enlarged_into_lines():
    """Small writing (12 px letters, enlarged about 3x) under 1% dark specks: the specks, enlarged
    with the page, passed for letters and were found as 2,614 lines. The page is recognised as
    speckled, its specks are painted out before it is enlarged, and its 4 lines are found; a
    clean page is left alone."""
    clean = render_page(size=12)
    page, lines = _lines(_speckled(clean, 0.01))
    binarized = next(step for step in page.steps if step["step"] == "binarize")
    assert binarized.get("specks", 0) > 1000 and any(step["step"] == "upscale" for step in page.steps)
    assert len(lines) == len(LINES)
    page, lines = _lines(clean)
    assert "specks" not in next(step for step in page.steps if step["step"] == "binarize")
    assert len(lines) == len(LINES)


def _grainy(image, sigma, seed=0):
    noise = np.random.default_rng(seed).normal(0, sigma, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def test_grain_on_a_blank_sheet_is_not_taken_for_lines_and_writing_under_it_is_found():
    """Sensor grain (a photo taken in dim light) on a blank sheet: thresholded as it was, a third
    of its pixels passed for ink, in clusters the size of small letters (this 1000 x 800 sheet: 177
    lines; a 5 MP one read as 32-125 lines of invented text in 35-146 s). A grainy page's mask is
    thresholded blurred, and its ink must stand out of the grain left: no line is found on the
    blank sheet, and writing under the same grain is found line by line. The recognizer still
    reads the page unblurred (blurred, 600 val lines under grain of s 20 read at 30.6% CER against
    27.2%). A clean page is left alone."""
    sheet = _grainy(np.full((1000, 800), 200.0), 20)
    page, lines = _lines(sheet)
    assert lines == []
    assert next(step for step in page.steps if step["step"] == "binarize")["grain"] >= GRAINY
    binarized = binarize(Page(sheet, 1, (800, 1000)))
    assert np.array_equal(binarized.image, flatten_illumination(sheet))
    page, lines = _lines(_grainy(render_page().astype(float), 20))
    assert len(lines) == len(LINES)
    page, lines = _lines(render_page())
    assert "grain" not in next(step for step in page.steps if step["step"] == "binarize")


@pytest.mark.parametrize("cells", [1 << 21, 200])
def test_seams_found_together_are_each_their_own_cheapest_path(monkeypatch, cells):
    """The seams of a page are searched together, a column of all of them at a time (in groups of
    at most SEAM_CELLS cells): each must come out as if searched alone, and follow a free valley
    through costly ink."""
    import ocrcli.segment
    from ocrcli.segment import _seams

    monkeypatch.setattr(ocrcli.segment, "SEAM_CELLS", cells)

    rng = np.random.default_rng(3)
    step = 3
    valley = np.full((12, 40), 50.0, np.float32)
    path = np.clip(2 + np.arange(40) // (2 * step), 0, 11)  # down a row every other step
    valley[path, np.arange(40)] = 0.0
    energies = [rng.uniform(0, 10, (int(rng.integers(2, 15)), int(rng.integers(1, 60)))).astype(np.float32) for _ in range(9)]
    energies.insert(4, valley)
    together = _seams(energies, step)
    assert [len(s) for s in together] == [e.shape[1] for e in energies]
    for energy, seam in zip(energies, together):
        assert np.array_equal(seam, _seams([energy], step)[0])
        assert seam.min() >= 0 and seam.max() < energy.shape[0]
    assert np.array_equal(together[4], path)
    assert _seams([], step) == []


def test_a_short_entry_is_reported_with_the_band_of_a_line_of_writing():
    """A number alone in a table cell is only as tall as its digits; its reported box grows, around
    its middle, to the share of the page's typical line height that reference polygons give it."""
    from ocrcli.documents import BBox, Line
    from ocrcli.segment import LineCrop, SegmentConfig, line_box, line_boxes

    def found(x0, y0, x1, y1):
        return Line(BBox(x0, y0 + 5, x1, y1 - 5)), LineCrop(np.zeros((y1 - y0, x1 - x0), np.uint8), BBox(x0 - 4, y0, x1 + 4, y1))

    lines, crops = zip(found(100, 100, 900, 150), found(100, 160, 940, 210), found(100, 220, 880, 266),
                       found(100, 300, 150, 316), found(200, 2, 260, 14))
    boxes = line_boxes(list(lines), list(crops), 1000)
    assert boxes[:3] == [line_box(ln, c) for ln, c in zip(lines[:3], crops[:3])]  # long lines as they were
    least = SegmentConfig().band_share * 50  # the lines' median height weighted by width: 50 px
    b = boxes[3]  # 16 px high, around row 308: as wide, 35-36 px high, around the same row
    assert (b.x0, b.x1) == (100, 150) and least <= b.height <= least + 1 and abs(b.y0 + b.y1 - 2 * 308) <= 1
    assert boxes[4].y0 == 0 and boxes[4].height < least  # kept inside the page
    alone = line_boxes([lines[3]], [crops[3]], 1000)  # alone, it is the page's typical line: as it was
    assert alone == [line_box(lines[3], crops[3])]
