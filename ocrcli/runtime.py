"""Process-wide settings for the CLI, applied before torch is loaded.

oneDNN (PyTorch's CPU kernels) caches a compiled kernel, with its scratch memory, for every input
shape it meets, up to 1024 of them by default. Line batches come in many widths, so that cache made
peak RSS grow with the number of lines read (964 MB after 1000 validation lines). A cache of 16
keeps memory flat at a cost of about 5% speed (measured: ``make bench`` and the closing notes).
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

ONEDNN_CACHE = "16"


def limit_memory() -> None:
    """Bound oneDNN's kernel cache (a user's own ONEDNN_PRIMITIVE_CACHE_CAPACITY wins)."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE)


def quiet_decoders() -> None:
    """Pillow warns on stderr about damaged files it can still partly read ("Tag data larger than
    file", truncated EXIF...); the CLI reports each file's problem in its own one-line error."""
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AVX512-BF16 or AMX); emulated bf16 is slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
