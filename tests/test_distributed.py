"""Past one machine: the Python API, --shard for job arrays, and the Ray Data engine.

The Ray tests start a local cluster (2 CPUs) once for the module; the distributed run must give
the same text as the local one, fail a bad file alone and skip finished files on a rerun.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MODEL, ROOT, render_page
from PIL import Image

from ocrcli.config import RunConfig
from ocrcli.inputs import InputFile, parse_shard, select_shard, shard_of

pytestmark = pytest.mark.skipif(not MODEL.is_file(), reason=f"shipped model {MODEL} is missing")


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Path:
    """Two real sample pages, a page rendered at test time, a two-page TIFF and a damaged JPEG."""
    folder = tmp_path_factory.mktemp("batch")
    for name in ("hooker-JDH_2_16_145_001.jpg", "poilus-will_AN_0050-0.jpg"):
        shutil.copy(ROOT / "samples" / "pages" / name, folder / name)
    Image.fromarray(render_page()).save(folder / "rendered.png")
    frames = [Image.fromarray(render_page(["first page of two"])), Image.fromarray(render_page(["and the second"]))]
    frames[0].save(folder / "two.tif", save_all=True, append_images=frames[1:])
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def _texts(folder: Path) -> dict[str, list[str]]:
    return {p.name: [ln["text"] for page in json.loads(p.read_text(encoding="utf-8"))["pages"] for ln in page["lines"]]
            for p in sorted(folder.glob("*.json"))}


# --- the public API -------------------------------------------------------------------------------

def test_api_recognize_yields_outcomes_in_order_and_reports_bad_paths(tmp_path, page_png):
    import ocrcli

    cfg = ocrcli.RunConfig(formats=("json",), output_dir=tmp_path / "out")
    outcomes = list(ocrcli.recognize([page_png, tmp_path / "missing.jpg"], cfg))
    assert outcomes[0].input is None and "missing.jpg: no such file" in outcomes[0].error
    assert outcomes[1].input.path == page_png and outcomes[1].error is None and outcomes[1].lines >= 3
    assert (tmp_path / "out" / "page.json").exists()
    rec = ocrcli.Recognizer()
    again = list(ocrcli.recognize(ocrcli.find_inputs([page_png]).files, ocrcli.RunConfig(to_stdout=True),
                                  recognizer=rec, emit=lambda s: None))
    assert again[0].result.text == outcomes[1].result.text


def test_import_ocrcli_stays_light():
    code = "import sys, ocrcli; print('torch' in sys.modules or 'cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# --- --shard I/N ----------------------------------------------------------------------------------

def test_parse_shard():
    assert parse_shard("0/4") == (0, 4) and parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "1", "-1/4", "a/b", "1/0", "/4"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def test_shards_are_disjoint_cover_everything_and_stay_put_when_files_arrive():
    files = [InputFile(Path(f"scans/{i:04d}.jpg"), f"scans/{i:04d}.jpg", Path(f"{i:04d}.jpg")) for i in range(400)]
    shards = [select_shard(files, i, 4) for i in range(4)]
    assert sorted(f.display for s in shards for f in s) == sorted(f.display for f in files)
    assert all(len(s) > 60 for s in shards)  # roughly balanced (100 expected each)
    assert all(s == sorted(s, key=files.index) for s in shards)  # sorted order kept inside a shard
    grown = files[::2] + [InputFile(Path("scans/new.jpg"), "scans/new.jpg", Path("new.jpg"))]
    assert all(shard_of(f, 4) == i for i, s in enumerate(shards) for f in s if f in grown)


def test_cli_shards_split_a_folder(tmp_path, batch):
    from typer.testing import CliRunner

    from ocrcli.cli import app

    done = []
    for i in range(3):
        result = CliRunner().invoke(app, ["recognize", str(batch), "-o", str(tmp_path / "out"), "-f", "json", "--shard", f"{i}/3"])
        assert result.exit_code in (0, 1), result.output  # 1 for the shard that holds broken.jpg
        assert f"shard {i}/3" in result.stderr
        done.append(result.stderr)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.json")) == ["hooker-JDH_2_16_145_001.json", "poilus-will_AN_0050-0.json",
                                                                        "rendered.json", "two.json"]
    assert sum("1 failed" in s for s in done) == 1
    bad = CliRunner().invoke(app, ["recognize", str(batch), "--shard", "3/3"])
    assert bad.exit_code == 2 and "--shard" in bad.stderr


# --- Ray Data (tests/ray_engine_cases.py, in a process of its own) ---------------------------------

def test_ray_engine(tmp_path):
    """The Ray cases: a local 2-CPU cluster; the Ray run and the local run give the same text, a bad
    file fails alone, a rerun skips finished files, --stdout keeps input order, a bad model stops the
    batch with ModelError, and the CLI joins the cluster with --address (see ray_engine_cases.py)."""
    pytest.importorskip("ray.data", reason="Ray is not installed: pip install 'ocrcli[ray]'")
    import xml.etree.ElementTree as ET

    junit = tmp_path / "ray.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
                           str(ROOT / "tests" / "ray_engine_cases.py"), f"--junitxml={junit}"],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert junit.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    suite = ET.parse(junit).getroot().find("testsuite")
    counts = {k: int(suite.get(k)) for k in ("tests", "failures", "errors", "skipped")}
    if counts["skipped"] == counts["tests"]:
        pytest.skip("Ray cannot start a local cluster on this machine: " + proc.stdout[-300:])
    assert counts == {"tests": 4, "failures": 0, "errors": 0, "skipped": 0}, proc.stdout[-4000:]
