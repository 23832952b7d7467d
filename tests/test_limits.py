"""Hard stops and hostile paths: kill -9 during a write, a full disk, outputs escaping --output-dir."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import MODEL, ROOT
from ocrcli.cli import app
from ocrcli.config import RunConfig
from ocrcli.errors import ExitCode
from ocrcli.inputs import InputFile, resolve_inputs
from ocrcli.pipeline import output_paths

WRITER = """
import sys
from ocrcli.output import atomic_write
atomic_write(sys.argv[1], "y" * 400_000_000)  # big enough to be killed mid-write
"""


def test_kill_9_during_write_leaves_no_truncated_output(tmp_path):
    target = tmp_path / "page.txt"
    target.write_text("the complete earlier output\n")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], cwd=ROOT)
    deadline = time.time() + 60
    part = None
    while time.time() < deadline and proc.poll() is None:  # wait until the temporary file is growing
        parts = [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
        if parts and parts[0].stat().st_size > 1_000_000:
            part = parts[0]
            break
        time.sleep(0.01)
    assert part is not None, "the writer never started writing"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    assert target.read_text() == "the complete earlier output\n"  # never truncated or half-replaced
    # A later run writes over the leftovers without trouble; only hidden .part files can remain.
    assert [p for p in tmp_path.iterdir() if not p.name.startswith(".")] == [target]


@pytest.mark.skipif(not MODEL.is_file(), reason="shipped model missing")
def test_disk_full_is_an_output_error_without_partial_files(tmp_path, monkeypatch, page_png):
    import ocrcli.output

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ocrcli.output.os, "fsync", full)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["recognize", str(page_png), "-o", str(out), "-f", "txt", "-f", "json"])
    assert result.exit_code == ExitCode.OUTPUT
    line = next(line for line in result.stderr.splitlines() if "No space left" in line)
    assert "page.txt" in line or "page.json" in line
    assert not [p for p in out.rglob("*") if p.is_file()]  # no output, and no temporary file left


def test_outputs_never_escape_the_output_dir(tmp_path, monkeypatch):
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    (tmp_path / "x.png").write_bytes(b"")
    (tmp_path / "a" / "y.png").write_bytes(b"")
    monkeypatch.chdir(deep)
    out = tmp_path / "out"
    files = resolve_inputs(["../../x.png", "../y.png", str(tmp_path / "x.png"), "../../*.png"]).files
    files.append(InputFile(Path("/etc/../etc/z.png"), "/etc/../etc/z.png", Path("/etc/../etc/z.png")))
    targets = output_paths(files, RunConfig(output_dir=out, formats=("txt", "json", "page")))
    for per_format in targets.values():
        for path in per_format.values():
            resolved = (deep / path).resolve() if not path.is_absolute() else path.resolve()
            assert resolved.is_relative_to(out.resolve()), path


def test_input_names_never_reach_a_shell(tmp_path, monkeypatch):
    """A file name full of shell syntax is read as a name: nothing runs, nothing is created elsewhere."""
    if not MODEL.is_file():
        pytest.skip("shipped model missing")
    from PIL import Image

    from conftest import render_page

    monkeypatch.chdir(tmp_path)
    name = "$(touch pwned1); `touch pwned2` | touch pwned3 & -x.png"
    folder = tmp_path / "in"
    folder.mkdir()
    page = Image.fromarray(render_page(["a note"], size=30, width=400))
    page.save(folder / name, format="PNG")
    page.convert("RGB").save(folder / "-leading-dash; touch pwned4.pdf", format="PDF")
    result = CliRunner().invoke(app, ["recognize", "-q", "--", "in", "in/-leading-dash; touch pwned4.pdf"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # no pwned* file anywhere
    assert (folder / "-leading-dash; touch pwned4.txt").exists()


def test_one_malloc_arena_unless_the_user_set_one(monkeypatch):
    import platform

    from ocrcli import runtime

    calls = []
    monkeypatch.setattr(runtime, "one_malloc_arena", lambda: calls.append(1) or True)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    runtime.limit_memory()
    assert calls == []  # the user's setting stands
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    runtime.limit_memory()
    assert calls == [1]
    monkeypatch.undo()
    if platform.libc_ver()[0] == "glibc":
        assert runtime.one_malloc_arena() is True  # mallopt accepted M_ARENA_MAX
