"""A batch stopped by SIGTERM or Ctrl-C leaves only complete outputs, and a rerun finishes the rest."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import MODEL, ROOT

pytestmark = [
    pytest.mark.skipif(not MODEL.is_file(), reason="shipped model missing"),
    pytest.mark.skipif(os.name != "posix", reason="POSIX signals"),
]


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_mid_batch_then_resume(tmp_path, page_png, sig, code):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(12):
        shutil.copy(page_png, inputs / f"p{i:02d}.png")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "ocrcli.cli", "recognize", str(inputs), "-o", str(out), "--device", "cpu", "-q"]
    # A command started in the background by a non-interactive shell (`make test &`, nohup) inherits
    # SIGINT ignored, and keeps it ignored as a background job should: Ctrl-C is for the foreground.
    # The batch under test is started as from a terminal, with SIGINT's default action.
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and any(out.glob("*.txt"))):
        time.sleep(0.05)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "run the same command again" in stderr
    written = sorted(p.name for p in out.iterdir())
    assert all(name.endswith(".txt") for name in written), written  # no temporary or partial files
    assert 1 <= len(written) < 12
    rerun = subprocess.run(cmd[:-1], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(written)} skipped" in rerun.stderr
    assert len(list(out.glob("*.txt"))) == 12
