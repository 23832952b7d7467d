"""The `ocr` command through its real entry point: options, outputs and exit codes."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import MODEL, ROOT, bend_page, has_poppler, photograph, render_page
from ocrcli.cli import app
from ocrcli.errors import ExitCode
from ocrcli.metrics import edit_distance

runner = CliRunner()
pytestmark = pytest.mark.skipif(not MODEL.is_file(), reason=f"shipped model {MODEL} is missing")


def ocr(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_help_explains_every_option_with_examples():
    result = ocr("--help")
    assert result.exit_code == 0 and "recognize" in result.stdout and "eval" in result.stdout
    result = ocr("recognize", "-h")
    assert result.exit_code == 0
    for option in ("--format", "--output-dir", "--stdout", "--layout", "--device", "--model", "--dpi",
                   "--save-stages", "--overwrite", "--no-deskew", "--no-binarize", "--no-exif", "--quiet", "Example"):
        assert option in result.stdout, option
    assert ocr("--version").stdout.startswith("ocrcli ")


def test_help_does_not_import_torch():
    code = "import sys; from ocrcli.cli import app; import typer\n" \
           "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"


def test_txt_beside_input_by_default(page_png):
    result = ocr("recognize", page_png, "-q")
    assert result.exit_code == 0, result.output
    out = page_png.with_suffix(".txt")
    assert out.exists() and out.read_text(encoding="utf-8").strip()
    assert result.stdout == ""  # stdout is for data only; nothing was asked for on stdout


def test_json_to_output_dir_and_summary_on_stderr(tmp_path, page_png):
    result = ocr("recognize", page_png, "--format", "json", "-f", "txt", "--output-dir", tmp_path / "out")
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "out" / "page.json").read_text(encoding="utf-8"))
    assert doc["path"] == str(page_png) and len(doc["model"]["sha256"]) == 64
    assert doc["pages"][0]["lines"], "the page's lines were not found"
    assert (tmp_path / "out" / "page.txt").exists()
    assert "1 done, 0 failed" in result.stderr


def test_layout_line_json_stdout_gives_json_lines(line_pngs):
    result = ocr("recognize", "--layout", "line", "--format", "json", "--stdout", *line_pngs)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["path"] for r in rows] == [str(p) for p in line_pngs]
    assert all(isinstance(r["text"], str) for r in rows)


def test_no_input_matched_exit_code(tmp_path):
    result = ocr("recognize", tmp_path / "nothing-*.jpg")
    assert result.exit_code == ExitCode.NO_INPUT
    assert "matched no supported files" in result.stderr


def test_bad_input_fails_alone_with_one_line_error(tmp_path, page_png):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    result = ocr("recognize", bad, page_png, "-o", tmp_path / "out")
    assert result.exit_code == ExitCode.INPUT_FAILED
    errors = [line for line in result.stderr.splitlines() if "broken.jpg" in line]
    assert len(errors) == 1
    assert (tmp_path / "out" / "page.txt").exists() and not (tmp_path / "out" / "broken.txt").exists()
    assert "1 done, 1 failed" in result.stderr


def test_usage_errors_exit_2(page_png):
    assert ocr("recognize", page_png, "--format", "docx").exit_code == ExitCode.USAGE
    assert ocr("recognize", page_png, "--device", "tpu").exit_code == ExitCode.USAGE
    assert ocr("recognize", page_png, "--stdout", "-o", "x").exit_code == ExitCode.USAGE
    assert ocr("recognize").exit_code == ExitCode.USAGE


def test_cuda_without_gpu_is_a_device_error(page_png):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = ocr("recognize", page_png, "--device", "cuda")
    assert result.exit_code == ExitCode.DEVICE and "cuda" in result.stderr.lower()


def test_missing_or_damaged_model_exit_code(tmp_path, page_png):
    result = ocr("recognize", page_png, "--model", tmp_path / "none.safetensors")
    assert result.exit_code == ExitCode.MODEL
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a model at all")
    result = ocr("recognize", page_png, "--model", junk)
    assert result.exit_code == ExitCode.MODEL and "junk.safetensors" in result.stderr


def test_unwritable_output_dir_exit_code(tmp_path, page_png):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = ocr("recognize", page_png, "-o", blocker / "sub")
    assert result.exit_code == ExitCode.OUTPUT
    assert "cannot write" in result.stderr


def test_rerun_skips_existing_outputs_and_overwrite_redoes(tmp_path, page_png):
    out = tmp_path / "out"
    assert ocr("recognize", page_png, "-o", out).exit_code == 0
    result = ocr("recognize", page_png, "-o", out)
    assert result.exit_code == 0 and "1 skipped" in result.stderr
    result = ocr("recognize", page_png, "-o", out, "--overwrite")
    assert result.exit_code == 0 and "1 done" in result.stderr


def test_a_rerun_with_nothing_to_do_loads_no_model_and_reads_ahead_the_first_input_to_do(tmp_path, page_png, monkeypatch):
    """A cron job re-running over a finished folder: every output exists, so torch and the model
    are not loaded (about 2 s a run). With one new input after a finished one, the page read while
    the model loads is the new input's, not the skipped one's."""
    import ocrcli.api
    import ocrcli.pipeline

    out = tmp_path / "out"
    assert ocr("recognize", page_png, "-o", out).exit_code == 0
    load = ocrcli.api.load_recognizer
    monkeypatch.setattr(ocrcli.api, "load_recognizer", lambda cfg: pytest.fail("the model was loaded"))
    result = ocr("recognize", page_png, "-o", out)
    assert result.exit_code == 0 and "1 skipped" in result.stderr, result.output
    monkeypatch.setattr(ocrcli.api, "load_recognizer", load)
    new = tmp_path / "new.png"
    new.write_bytes(page_png.read_bytes())
    early = []
    monkeypatch.setattr(ocrcli.pipeline, "EarlyPage", lambda f, cfg: early.append(f.path) or None)
    result = ocr("recognize", page_png, new, "-o", out)
    assert result.exit_code == 0 and "1 done" in result.stderr and "1 skipped" in result.stderr, result.output
    assert early == [new]


def test_stage_switches_and_save_stages(tmp_path, page_png):
    result = ocr("recognize", page_png, "--stdout", "-f", "json", "--no-paper", "--no-deskew", "--no-denoise", "--no-upscale",
                 "--save-stages", tmp_path / "stages", "-q")
    assert result.exit_code == 0, result.output
    steps = [s["step"] for s in json.loads(result.stdout)["pages"][0]["preprocessing"]]
    assert steps == ["binarize"]
    saved = sorted(p.name for p in (tmp_path / "stages").iterdir())
    assert "page.png-p1-0-input.png" in saved and "page.png-p1-1-binarize.png" in saved, saved
    assert any(name.endswith("-lines.png") for name in saved)
    result = ocr("recognize", page_png, "--stdout", "-f", "json", "--no-binarize", "-q")
    assert "binarize" not in [s["step"] for s in json.loads(result.stdout)["pages"][0]["preprocessing"]]


@pytest.mark.skipif(not has_poppler(), reason="PDF input needs poppler-utils (pdftoppm), not installed here")
def test_pdf_input_with_dpi(tmp_path):
    frames = [Image.fromarray(render_page()) for _ in range(2)]
    pdf = tmp_path / "notes.pdf"
    frames[0].save(pdf, save_all=True, append_images=frames[1:], resolution=150.0)
    result = ocr("recognize", pdf, "--dpi", "150", "--stdout", "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\f") == 1


def test_real_process_exit_code_and_streams(tmp_path, page_png):
    bad = tmp_path / "empty.png"
    bad.write_bytes(b"")
    proc = subprocess.run([sys.executable, "-m", "ocrcli.cli", "recognize", str(page_png), str(bad), "--stdout", "--device", "cpu"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == ExitCode.INPUT_FAILED
    assert "empty.png" in proc.stderr and "empty.png" not in proc.stdout
    # The process ends without the interpreter's teardown: all of stdout still arrives, flushed.
    assert proc.stdout.strip() and proc.stdout == ocr("recognize", page_png, "--stdout", "--device", "cpu").stdout


def test_files_from_list_and_nul_separated_stdin(tmp_path, page_png, line_pngs):
    odd = tmp_path / "odd [1].png"  # brackets: a literal name, never a pattern
    odd.write_bytes(line_pngs[0].read_bytes())
    listing = tmp_path / "list.txt"
    listing.write_text(f"{line_pngs[1]}\n{odd}\n\n", encoding="utf-8")
    result = ocr("recognize", "--layout", "line", "--files-from", listing, "--stdout", "-f", "json", "-q")
    assert result.exit_code == 0, result.output
    assert [json.loads(l)["path"] for l in result.stdout.splitlines()] == sorted([str(line_pngs[1]), str(odd)])
    data = f"{line_pngs[0]}\0{line_pngs[1]}\0".encode()
    result = runner.invoke(app, ["recognize", "--layout", "line", "--files-from", "-", "-0", "--stdout", "-q"], input=data)
    assert result.exit_code == 0, result.output
    assert ocr("recognize", "-0", page_png).exit_code == ExitCode.USAGE  # -0 without --files-from


def test_review_below_marks_low_confidence_lines(page_png):
    result = ocr("recognize", page_png, "--stdout", "-f", "json", "--review-below", "1.0")
    assert result.exit_code == 0, result.output
    lines = json.loads(result.stdout)["pages"][0]["lines"]
    assert lines and all(line.get("review") is True for line in lines)  # every confidence is < 1.0
    assert f"{len(lines)} lines to review" in result.stderr
    result = ocr("recognize", page_png, "--stdout", "-f", "json", "--review-below", "0", "-q")
    assert not any("review" in line for line in json.loads(result.stdout)["pages"][0]["lines"])


def test_keep_fragments_reaches_the_page_path(page_png, monkeypatch):
    import ocrcli.pipeline

    monkeypatch.setattr(ocrcli.pipeline, "FRAGMENT_CONFIDENCE", 1.01)  # every line is now a "fragment"
    monkeypatch.setattr(ocrcli.pipeline, "FRAGMENT_CHARS", 10_000)
    dropped = ocr("recognize", page_png, "--stdout", "-q")
    kept = ocr("recognize", page_png, "--stdout", "-q", "--keep-fragments")
    assert dropped.exit_code == 0 and kept.exit_code == 0, kept.output
    assert dropped.stdout.strip() == "" and len(kept.stdout.strip().splitlines()) >= 3


def test_models_lists_the_shipped_model():
    result = ocr("models")
    assert result.exit_code == 0, result.output
    assert f"{MODEL.name}  (default)" in result.stdout and "validation CER" in result.stdout
    assert "ocrcli-charlm-v1.json.gz" in result.stdout and "ocrcli-charlm-en-v1.json.gz" in result.stdout
    assert "(missing)" not in result.stdout


PAGE_LINES = ["Dear Anna, thank you for the letter", "we arrived on Tuesday at noon and"]


def _one_page_jsonl(tmp_path, reverse: bool = False):
    """A page of PAGE_LINES rendered at test time and its pages.jsonl (reference boxes from the
    ink), the reference lines listed bottom to top when ``reverse``."""
    image = render_page(PAGE_LINES, size=36, width=1200)
    Image.fromarray(image).save(tmp_path / "p.png")
    rows = np.where((image < 128).any(axis=1))[0]
    groups = np.split(rows, np.where(np.diff(rows) > 5)[0] + 1)
    refs = []
    for text, g in zip(PAGE_LINES, groups):
        cols = np.where((image[g[0]:g[-1] + 1] < 128).any(axis=0))[0]
        x0, x1, y0, y1 = int(cols[0]), int(cols[-1]), int(g[0]), int(g[-1])
        refs.append({"id": f"l{len(refs)}", "text": text, "polygon": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]})
    (tmp_path / "pages.jsonl").write_text(json.dumps({"image": "p.png", "set": "synthetic", "lines": refs[::-1] if reverse else refs}) + "\n")
    return tmp_path / "pages.jsonl"


def _report_row(stdout: str) -> list[str]:
    row = next(line for line in stdout.splitlines() if "synthetic" in line)
    return [c.strip() for c in row.strip("│| ").split("│")]


def test_eval_pages_reports_line_finding_and_page_cer(tmp_path):
    """`ocr eval --pages` on a tiny pages.jsonl made at test time: a page and its line boxes."""
    pages = _one_page_jsonl(tmp_path)
    peer = tmp_path / "peer.tsv"
    peer.write_text(f"{tmp_path / 'p.png'}\tDear Anna\\nwe arrived\t0.1\n")
    result = ocr("eval", "--pages", pages, "--compare", f"other={peer}")
    assert result.exit_code == 0, result.output
    cells = _report_row(result.stdout)
    assert cells[1:6] == ["1", "2", "2", "100.0%", "100.0%"]  # both lines found, nothing else
    assert cells[6] == cells[7]  # the output's order is the reference's
    assert cells[-2].endswith("%") and float(cells[-2][:-1]) > 30  # the peer's page CER (half the text is missing)


def test_eval_pages_scores_a_page_apart_from_its_references_line_order(tmp_path):
    """A reference that lists a page's lines bottom to top charges the page CER for the order;
    the reference-order page CER puts the found lines in the reference's order and does not."""
    result = ocr("eval", "--pages", _one_page_jsonl(tmp_path, reverse=True))
    assert result.exit_code == 0, result.output
    cells = _report_row(result.stdout)
    page, ref_order = float(cells[6][:-1]), float(cells[7][:-1])
    assert page > 50 and ref_order < 10, cells


def _read(path, *extra) -> str:
    """The text ``ocr recognize`` prints for one input (greedy decoding, on the CPU)."""
    result = ocr("recognize", path, "--stdout", "--device", "cpu", "--decoder", "greedy", "-q", *extra)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_pages_scanned_sideways_or_upside_down_read_as_upright(tmp_path, page_png):
    upright = _read(page_png)
    assert len(upright) > 100
    image = np.asarray(Image.open(page_png))
    for degrees, code in ((90, cv2.ROTATE_90_CLOCKWISE), (180, cv2.ROTATE_180), (270, cv2.ROTATE_90_COUNTERCLOCKWISE)):
        path = tmp_path / f"turned{degrees}.png"
        Image.fromarray(cv2.rotate(image, code)).save(path)
        text = _read(path)
        assert edit_distance(text, upright) <= 0.03 * len(upright), (degrees, text)
        if degrees == 180:  # the half-turn check is what makes it readable
            assert edit_distance(_read(path, "--no-orient"), upright) > 0.3 * len(upright)


def test_a_page_photographed_on_a_desk_reads_as_its_scan(tmp_path):
    """A sample page photographed at an angle on a mottled desk: the sheet is cut out and squared
    up, so it reads nearly as the scan does and its lines map back onto the sheet in the photo;
    read whole (--no-paper) the desk's blotches become lines of junk."""
    sample = ROOT / "samples" / "pages" / "hooker-JDH_2_16_145_001.jpg"
    scan = _read(sample)
    photo, corners = photograph(np.asarray(Image.open(sample).convert("L")), "mottled", seed=1)
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    assert edit_distance(_read(path), scan) <= 0.12 * len(scan)
    assert edit_distance(_read(path, "--no-paper"), scan) > 0.4 * len(scan)
    page = json.loads(_read(path, "--format", "json"))["pages"][0]
    assert page["preprocessing"][0]["step"] == "paper"
    (left, top), (right, bottom) = corners.min(0), corners.max(0)
    for line in page["lines"]:
        x0, y0, x1, y1 = line["bbox"]
        assert left - 5 <= x0 < x1 <= right + 5 and top - 5 <= y0 < y1 <= bottom + 5


def test_a_page_photographed_bent_reads_as_its_scan(tmp_path):
    """A sample page whose lines bow by 2.5% of its height (a sheet photographed bent): its lines
    are straightened, so it reads nearly as the scan does, and its lines' polygons on the input
    follow the bow; read with deskew alone (--no-straighten) the bowed lines run into each other."""
    sample = ROOT / "samples" / "pages" / "copiste-wikitexte_0031_1.jpg"
    scan = _read(sample)
    image = np.asarray(Image.open(sample).convert("L"))
    bent, dy = bend_page(image, 0.025 * image.shape[0])
    path = tmp_path / "bent.png"
    Image.fromarray(bent).save(path)
    assert edit_distance(_read(path), scan) <= 0.06 * len(scan)
    assert edit_distance(_read(path, "--no-straighten"), scan) > 0.3 * len(scan)
    page = json.loads(_read(path, "--format", "json"))["pages"][0]
    assert "straighten" in [step["step"] for step in page["preprocessing"]]
    widest = max(page["lines"], key=lambda line: line["bbox"][2] - line["bbox"][0])
    top = np.array(widest["polygon"][:len(widest["polygon"]) // 2], float)  # along the top edge, left to right
    follows = top[:, 1] - dy[np.clip(top[:, 0].astype(int), 0, len(dy) - 1)]  # its height above the bow
    assert np.ptp(top[:, 1]) > 0.5 * np.ptp(dy) and np.sum(np.abs(follows - np.median(follows)) > 6) <= 1


def test_a_negative_scan_is_read_inverted(tmp_path, page_png):
    """Light writing on a dark ground (a microfilm negative) reads as the positive does; without
    the orientation checks, which hold the negative check, it does not."""
    positive = _read(page_png)
    negative = tmp_path / "negative.png"
    Image.fromarray(255 - np.asarray(Image.open(page_png).convert("L"))).save(negative)
    assert edit_distance(_read(negative), positive) <= 0.03 * len(positive)
    assert edit_distance(_read(negative, "--no-orient"), positive) > 0.3 * len(positive)


def test_a_negative_scanned_sideways_is_read_inverted_and_turned(tmp_path, page_png):
    """A negative's lines show which way they run only once it is inverted (its ink mask is
    the dark ground), so the turn is looked for again on the inverted page."""
    positive = _read(page_png)
    image = 255 - np.asarray(Image.open(page_png).convert("L"))
    for degrees, code in ((90, cv2.ROTATE_90_CLOCKWISE), (270, cv2.ROTATE_90_COUNTERCLOCKWISE)):
        path = tmp_path / f"negative{degrees}.png"
        Image.fromarray(cv2.rotate(image, code)).save(path)
        assert edit_distance(_read(path), positive) <= 0.03 * len(positive), degrees
