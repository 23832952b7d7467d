"""Archive formats: hOCR (XHTML), ALTO v4 and PAGE XML 2019, built with ElementTree.

Coordinates are pixels of the decoded input image, the same as in the JSON output. Every format
keeps the line's text, box, polygon and confidence, and its words with their boxes and confidences.
"""

from __future__ import annotations

import datetime as _dt
from xml.etree import ElementTree as ET

from ocrcli import __version__
from ocrcli.documents import BBox, DocumentResult, LineResult, PageResult

ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
ALTO_XSD = "http://www.loc.gov/standards/alto/v4/alto-4-3.xsd"
PAGE_NS = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
PAGE_XSD = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15/pagecontent.xsd"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"


def _xml(root: ET.Element) -> str:
    ET.indent(root, space=" ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _conf(value: float) -> str:
    return f"{min(1.0, max(0.0, value)):.4f}"


def _points(line: LineResult) -> list[tuple[int, int]]:
    if line.polygon:
        return list(line.polygon)
    b = line.bbox
    return [(b.x0, b.y0), (b.x1, b.y0), (b.x1, b.y1), (b.x0, b.y1)]


def _box_points(b: BBox) -> str:
    return f"{b.x0},{b.y0} {b.x1},{b.y0} {b.x1},{b.y1} {b.x0},{b.y1}"


def _union(boxes: list[BBox]) -> BBox:
    return BBox(min(b.x0 for b in boxes), min(b.y0 for b in boxes), max(b.x1 for b in boxes), max(b.y1 for b in boxes))


# --- hOCR ---------------------------------------------------------------------------------------

def _title(box: BBox, **props) -> str:
    parts = [f"bbox {box.x0} {box.y0} {box.x1} {box.y1}"]
    parts += [f"{k} {v}" for k, v in props.items()]
    return "; ".join(parts)


def to_hocr(doc: DocumentResult, run) -> str:
    """hOCR 1.2: one ``ocr_page`` per page, ``ocr_line`` per line, ``ocrx_word`` per word (x_wconf 0-100)."""
    root = ET.Element("html", {"xmlns": "http://www.w3.org/1999/xhtml", "xml:lang": "und", "lang": "und"})
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = doc.path
    ET.SubElement(head, "meta", {"http-equiv": "Content-Type", "content": "text/html; charset=utf-8"})
    ET.SubElement(head, "meta", {"name": "ocr-system", "content": f"ocrcli {__version__} ({run.model_id})"})
    ET.SubElement(head, "meta", {"name": "ocr-capabilities", "content": "ocr_page ocr_carea ocr_par ocr_line ocrx_word"})
    body = ET.SubElement(root, "body")
    for page in doc.pages:
        full = BBox(0, 0, page.width, page.height)
        pdiv = ET.SubElement(body, "div", {"class": "ocr_page", "id": f"page_{page.number}",
                                           "title": f'image "{_quote(doc.path)}"; {_title(full)}; ppageno {page.number - 1}'})
        if not page.lines:
            continue
        area_box = _union([ln.bbox for ln in page.lines])
        area = ET.SubElement(pdiv, "div", {"class": "ocr_carea", "id": f"block_{page.number}_1", "title": _title(area_box)})
        par = ET.SubElement(area, "p", {"class": "ocr_par", "id": f"par_{page.number}_1", "title": _title(area_box)})
        for n, line in enumerate(page.lines, 1):
            span = ET.SubElement(par, "span", {"class": "ocr_line", "id": f"line_{page.number}_{n}",
                                               "title": _title(line.bbox, x_wconf=round(100 * line.confidence))})
            words = line.words or []
            if not words:
                span.text = line.text
            for k, word in enumerate(words, 1):
                w = ET.SubElement(span, "span", {"class": "ocrx_word", "id": f"word_{page.number}_{n}_{k}",
                                                 "title": _title(word.bbox, x_wconf=round(100 * word.confidence))})
                w.text = word.text
                w.tail = " " if k < len(words) else None
    return '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n' + _xml(root).split("\n", 1)[1]


def _quote(path: str) -> str:
    return path.replace("\\", "\\\\").replace('"', '\\"')


# --- ALTO v4 ------------------------------------------------------------------------------------

def _alto_pos(el: ET.Element, b: BBox) -> None:
    el.set("HPOS", str(b.x0))
    el.set("VPOS", str(b.y0))
    el.set("WIDTH", str(b.width))
    el.set("HEIGHT", str(b.height))


def to_alto(doc: DocumentResult, run) -> str:
    """ALTO v4.3: one ``Page`` per page; ``TextLine`` with its polygon, ``String``/``SP`` per word (WC 0-1)."""
    ET.register_namespace("", ALTO_NS)
    ET.register_namespace("xsi", XSI_NS)
    q = lambda tag: f"{{{ALTO_NS}}}{tag}"  # noqa: E731
    root = ET.Element(q("alto"), {f"{{{XSI_NS}}}schemaLocation": f"{ALTO_NS} {ALTO_XSD}"})
    desc = ET.SubElement(root, q("Description"))
    ET.SubElement(desc, q("MeasurementUnit")).text = "pixel"
    src = ET.SubElement(desc, q("sourceImageInformation"))
    ET.SubElement(src, q("fileName")).text = doc.path
    proc = ET.SubElement(desc, q("Processing"), {"ID": "ocrcli"})
    ET.SubElement(proc, q("processingDateTime")).text = _now()
    ET.SubElement(proc, q("processingStepDescription")).text = f"handwriting recognition with model {run.model_id} (sha256 {run.model_sha256})"
    sw = ET.SubElement(proc, q("processingSoftware"))
    ET.SubElement(sw, q("softwareName")).text = "ocrcli"
    ET.SubElement(sw, q("softwareVersion")).text = __version__
    layout = ET.SubElement(root, q("Layout"))
    for page in doc.pages:
        p = ET.SubElement(layout, q("Page"), {"ID": f"page_{page.number}", "PHYSICAL_IMG_NR": str(page.number),
                                              "WIDTH": str(page.width), "HEIGHT": str(page.height), "PROCESSING": "ocrcli"})
        space = ET.SubElement(p, q("PrintSpace"))
        _alto_pos(space, BBox(0, 0, page.width, page.height))
        if not page.lines:
            continue
        block = ET.SubElement(space, q("TextBlock"), {"ID": f"block_{page.number}_1"})
        _alto_pos(block, _union([ln.bbox for ln in page.lines]))
        for n, line in enumerate(page.lines, 1):
            tl = ET.SubElement(block, q("TextLine"), {"ID": f"line_{page.number}_{n}"})
            _alto_pos(tl, line.bbox)
            shape = ET.SubElement(tl, q("Shape"))
            ET.SubElement(shape, q("Polygon"), {"POINTS": " ".join(f"{x},{y}" for x, y in _points(line))})
            words = line.words or []
            if not words:  # a line without CTC positions: one String for the whole line
                s = ET.SubElement(tl, q("String"), {"ID": f"string_{page.number}_{n}_1", "CONTENT": line.text, "WC": _conf(line.confidence)})
                _alto_pos(s, line.bbox)
            for k, word in enumerate(words, 1):
                if k > 1:
                    prev = words[k - 2].bbox
                    gap = BBox(prev.x1, line.bbox.y0, max(prev.x1, word.bbox.x0), line.bbox.y1)
                    ET.SubElement(tl, q("SP"), {"WIDTH": str(gap.width), "VPOS": str(gap.y0), "HPOS": str(gap.x0)})
                s = ET.SubElement(tl, q("String"), {"ID": f"string_{page.number}_{n}_{k}", "CONTENT": word.text, "WC": _conf(word.confidence)})
                _alto_pos(s, word.bbox)
    return _xml(root)


# --- PAGE XML 2019 ------------------------------------------------------------------------------

def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S")


def page_xml(doc: DocumentResult, page: PageResult, run) -> str:
    """One PAGE XML document (PcGts) for one page: a TextRegion with its TextLines and Words."""
    ET.register_namespace("", PAGE_NS)
    ET.register_namespace("xsi", XSI_NS)
    q = lambda tag: f"{{{PAGE_NS}}}{tag}"  # noqa: E731
    root = ET.Element(q("PcGts"), {f"{{{XSI_NS}}}schemaLocation": f"{PAGE_NS} {PAGE_XSD}"})
    meta = ET.SubElement(root, q("Metadata"))
    ET.SubElement(meta, q("Creator")).text = f"ocrcli {__version__}, model {run.model_id} (sha256 {run.model_sha256})"
    now = _now()
    ET.SubElement(meta, q("Created")).text = now
    ET.SubElement(meta, q("LastChange")).text = now
    pg = ET.SubElement(root, q("Page"), {"imageFilename": doc.path, "imageWidth": str(page.width), "imageHeight": str(page.height)})
    if page.lines:
        region = ET.SubElement(pg, q("TextRegion"), {"id": f"r{page.number}_1", "type": "paragraph"})
        ET.SubElement(region, q("Coords"), {"points": _box_points(_union([ln.bbox for ln in page.lines]))})
        for n, line in enumerate(page.lines, 1):
            tl = ET.SubElement(region, q("TextLine"), {"id": f"r{page.number}_1_l{n}"})
            ET.SubElement(tl, q("Coords"), {"points": " ".join(f"{x},{y}" for x, y in _points(line))})
            for k, word in enumerate(line.words or [], 1):
                w = ET.SubElement(tl, q("Word"), {"id": f"r{page.number}_1_l{n}_w{k}"})
                ET.SubElement(w, q("Coords"), {"points": _box_points(word.bbox)})
                eq = ET.SubElement(w, q("TextEquiv"), {"conf": _conf(word.confidence)})
                ET.SubElement(eq, q("Unicode")).text = word.text
            eq = ET.SubElement(tl, q("TextEquiv"), {"conf": _conf(line.confidence)})
            ET.SubElement(eq, q("Unicode")).text = line.text
        eq = ET.SubElement(region, q("TextEquiv"))
        ET.SubElement(eq, q("Unicode")).text = page.text
    return _xml(root)


def to_page_xml(doc: DocumentResult, run) -> list[str]:
    """PAGE XML describes one image: one document per page."""
    return [page_xml(doc, page, run) for page in doc.pages]
