"""Process-wide settings for the CLI, applied before torch is loaded.

oneDNN (PyTorch's CPU kernels) caches a compiled kernel, with its scratch memory, for every input
shape it meets, up to 1024 of them by default. Line batches come in many widths, so that cache made
peak RSS grow with the number of lines read (964 MB after 1000 validation lines). A cache of 16
keeps memory flat at a cost of about 5% speed (measured: ``make bench`` and the closing notes).

glibc gives each thread that allocates (torch's OpenMP worker, the thread that reads the first page
while torch loads, the one that reads the language model) its own malloc arena, and memory freed in
one is never reused by another: a 12-page PDF peaked at 537 MB with the default arenas and at 476 MB
with one, at the same speed (``ocr eval`` of 1000 lines: 185-199 vs 186-204 lines/s). Only
glibc has ``mallopt``; elsewhere nothing changes.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

ONEDNN_CACHE = "16"
M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def limit_memory() -> None:
    """Bound oneDNN's kernel cache and use one malloc arena (a user's own
    ONEDNN_PRIMITIVE_CACHE_CAPACITY or MALLOC_ARENA_MAX wins). Call it before threads start."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE)
    if "MALLOC_ARENA_MAX" not in os.environ:
        one_malloc_arena()


@functools.lru_cache(maxsize=1)
def one_malloc_arena() -> bool:
    """All threads allocate from glibc's main arena; False where the C library has no mallopt."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # no such function, or no C library by that means
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_ARENA_MAX, 1) == 1


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
