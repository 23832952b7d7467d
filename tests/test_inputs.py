import os
from pathlib import Path

from ocrcli.inputs import resolve_inputs


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_files_folders_and_globs_are_sorted_and_deduplicated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ["notes/b.jpg", "notes/a.PNG", "notes/sub/c.tif", "notes/readme.txt", "notes/.hidden.jpg", "scans/x.pdf"]:
        _touch(tmp_path / name)
    r = resolve_inputs(["notes", "notes/a.PNG", "scans/*.pdf", "notes/**/*.tif"])
    assert [str(f.path) for f in r.files] == ["notes/a.PNG", "notes/b.jpg", os.path.join("notes", "sub", "c.tif"), "scans/x.pdf"]
    assert r.problems == []
    # folder inputs keep their sub-folders for --output-dir mirroring
    assert [str(f.relative) for f in r.files] == ["a.PNG", "b.jpg", os.path.join("sub", "c.tif"), "x.pdf"]


def test_quoted_recursive_glob_is_expanded_by_the_tool(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _touch(tmp_path / "a/b/c/deep.jpeg")
    _touch(tmp_path / "a/top.bmp")
    r = resolve_inputs(["a/**/*.jpeg", "a/**/*.bmp"])
    assert sorted(str(f.path) for f in r.files) == [os.path.join("a", "b", "c", "deep.jpeg"), os.path.join("a", "top.bmp")]


def test_problems_are_reported_per_argument(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _touch(tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    r = resolve_inputs(["missing.jpg", "notes.txt", "nothing/*.png", "empty"])
    assert r.files == []
    assert len(r.problems) == 4
    assert r.problems[0].startswith("missing.jpg: no such file")
    assert "unsupported file type" in r.problems[1]
    assert "matched no supported files" in r.problems[2]
    assert "no JPEG/PNG/BMP/TIFF/PDF" in r.problems[3]
