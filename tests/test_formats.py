"""Archive formats on a real sample page: hOCR, ALTO v4, PAGE XML 2019 and searchable PDF.

Golden-structure tests: every format must carry the same lines, text, boxes and confidences as the
JSON output of the same run, and the XML formats must validate against their official schemas.
"""

import json
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import MODEL, ROOT
from ocrcli.cli import app

lxml_etree = pytest.importorskip("lxml.etree")

SCHEMAS = ROOT / "tests" / "schemas"
SAMPLE = ROOT / "samples" / "pages" / "copiste-wikitexte_0031_1.jpg"
TIFF = ROOT / "samples" / "notebook-peraire-poilus.tif"
ALTO = "{http://www.loc.gov/standards/alto/ns-v4#}"
PAGE = "{http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15}"
XHTML = "{http://www.w3.org/1999/xhtml}"

pytestmark = pytest.mark.skipif(not MODEL.is_file(), reason=f"shipped model {MODEL} is missing")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    out = tmp_path_factory.mktemp("formats")
    args = ["recognize", str(SAMPLE), str(TIFF), "-q", "-o", str(out)]
    for fmt in ("json", "txt", "hocr", "alto", "page", "pdf"):
        args += ["-f", fmt]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


def _json(outputs, stem):
    return json.loads((outputs / f"{stem}.json").read_text(encoding="utf-8"))


def _lines(doc):
    return [line for page in doc["pages"] for line in page["lines"]]


def _schema(name: str):
    return lxml_etree.XMLSchema(lxml_etree.parse(str(SCHEMAS / name), lxml_etree.XMLParser(no_network=True)))


def test_hocr_structure_matches_json(outputs):
    doc = _json(outputs, SAMPLE.stem)
    tree = lxml_etree.parse(str(outputs / f"{SAMPLE.stem}.hocr"))  # well-formed XHTML
    root = tree.getroot()
    assert root.tag == f"{XHTML}html"
    assert "ocrx_word" in root.find(f".//{XHTML}meta[@name='ocr-capabilities']").get("content")
    pages = root.findall(f".//{XHTML}div[@class='ocr_page']")
    assert len(pages) == 1
    assert re.search(r"bbox 0 0 (\d+) (\d+)", pages[0].get("title")).groups() == tuple(str(v) for v in (doc["pages"][0]["width"], doc["pages"][0]["height"]))
    lines = root.findall(f".//{XHTML}span[@class='ocr_line']")
    expected = _lines(doc)
    assert len(lines) == len(expected) > 5
    for el, line in zip(lines, expected):
        words = el.findall(f"{XHTML}span[@class='ocrx_word']")
        assert " ".join(w.text for w in words) == " ".join(line["text"].split())
        bbox = [int(v) for v in re.search(r"bbox (\d+) (\d+) (\d+) (\d+)", el.get("title")).groups()]
        assert bbox == line["bbox"]
        assert abs(int(re.search(r"x_wconf (\d+)", el.get("title")).group(1)) - 100 * line["confidence"]) <= 0.51
        for w, jw in zip(words, line["words"]):
            assert [int(v) for v in re.search(r"bbox (\d+) (\d+) (\d+) (\d+)", w.get("title")).groups()] == jw["bbox"]


def test_alto_validates_and_matches_json(outputs):
    doc = _json(outputs, SAMPLE.stem)
    tree = lxml_etree.parse(str(outputs / f"{SAMPLE.stem}.alto.xml"))
    _schema("alto-4-3.xsd").assertValid(tree)
    lines = tree.getroot().findall(f".//{ALTO}TextLine")
    expected = _lines(doc)
    assert len(lines) == len(expected) > 5
    for el, line in zip(lines, expected):
        strings = el.findall(f"{ALTO}String")
        assert " ".join(s.get("CONTENT") for s in strings) == " ".join(line["text"].split())
        x, y, w, h = (int(el.get(k)) for k in ("HPOS", "VPOS", "WIDTH", "HEIGHT"))
        assert [x, y, x + w, y + h] == line["bbox"]
        points = el.find(f"{ALTO}Shape/{ALTO}Polygon").get("POINTS").split()
        assert [[int(v) for v in p.split(",")] for p in points] == line["polygon"]
        for s, jw in zip(strings, line["words"]):
            assert abs(float(s.get("WC")) - jw["confidence"]) < 1e-3


def test_alto_multipage_has_one_page_element_per_page(outputs):
    doc = _json(outputs, TIFF.stem)
    tree = lxml_etree.parse(str(outputs / f"{TIFF.stem}.alto.xml"))
    _schema("alto-4-3.xsd").assertValid(tree)
    pages = tree.getroot().findall(f".//{ALTO}Page")
    assert [int(p.get("PHYSICAL_IMG_NR")) for p in pages] == [p["number"] for p in doc["pages"]] == [1, 2]


def test_page_xml_validates_and_matches_json(outputs):
    doc = _json(outputs, SAMPLE.stem)
    tree = lxml_etree.parse(str(outputs / f"{SAMPLE.stem}.page.xml"))
    _schema("pagecontent-2019-07-15.xsd").assertValid(tree)
    page = tree.getroot().find(f"{PAGE}Page")
    assert (int(page.get("imageWidth")), int(page.get("imageHeight"))) == (doc["pages"][0]["width"], doc["pages"][0]["height"])
    lines = page.findall(f".//{PAGE}TextLine")
    expected = _lines(doc)
    assert len(lines) == len(expected) > 5
    for el, line in zip(lines, expected):
        assert el.find(f"{PAGE}TextEquiv/{PAGE}Unicode").text == line["text"]
        points = el.find(f"{PAGE}Coords").get("points").split()
        assert [[int(v) for v in p.split(",")] for p in points] == line["polygon"]
        words = el.findall(f"{PAGE}Word")
        assert [w.find(f"{PAGE}TextEquiv/{PAGE}Unicode").text for w in words] == line["text"].split()


def test_page_xml_writes_one_file_per_page(outputs):
    doc = _json(outputs, TIFF.stem)
    schema = _schema("pagecontent-2019-07-15.xsd")
    files = [outputs / f"{TIFF.stem}.page.xml", outputs / f"{TIFF.stem}.p2.page.xml"]
    assert sorted(outputs.glob(f"{TIFF.stem}*.page.xml")) == sorted(files)
    for path, page in zip(files, doc["pages"]):
        tree = lxml_etree.parse(str(path))
        schema.assertValid(tree)
        text = [u.text for u in tree.getroot().findall(f".//{PAGE}TextLine/{PAGE}TextEquiv/{PAGE}Unicode")]
        assert text == [line["text"] for line in page["lines"]]


def test_searchable_pdf_text_layer_reads_back(outputs):
    pypdf = pytest.importorskip("pypdf")
    for stem in (SAMPLE.stem, TIFF.stem):
        doc = _json(outputs, stem)
        reader = pypdf.PdfReader(str(outputs / f"{stem}.ocr.pdf"))
        assert len(reader.pages) == len(doc["pages"])
        for pdf_page, page in zip(reader.pages, doc["pages"]):
            assert len(pdf_page.images) == 1  # the page image itself
            extracted = pdf_page.extract_text()
            for line in page["lines"]:
                # Helvetica's WinAnsi encoding covers the model's charset but for a few signs (drawn as '?').
                want = "".join(ch if ch.encode("cp1252", "ignore") else "?" for ch in " ".join(line["text"].split()))
                assert want in " ".join(extracted.split())
            # Pages keep the image's proportions.
            box = pdf_page.mediabox
            assert abs(float(box.width) / float(box.height) - page["width"] / page["height"]) < 0.01


def test_archive_formats_refuse_stdout():
    result = CliRunner().invoke(app, ["recognize", str(SAMPLE), "-f", "alto", "--stdout"])
    assert result.exit_code == 2
    assert "--stdout" in result.stderr


def test_output_files_get_normal_permissions(outputs):
    umask = os.umask(0o022)
    os.umask(umask)
    for path in Path(outputs).iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, f"{path.name}: not the mode open() would give (mkstemp's 0600 leaked)"
