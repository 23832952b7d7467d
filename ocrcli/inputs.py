"""Resolve the user's paths, directories and glob patterns into a sorted, de-duplicated file list."""

from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})
PDF_SUFFIXES = frozenset({".pdf"})
SUPPORTED_SUFFIXES = IMAGE_SUFFIXES | PDF_SUFFIXES
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class InputFile:
    """One input file: its path, how to show it, and its path relative to the folder or glob root it came from."""

    path: Path
    display: str
    relative: Path  # used to mirror folders under --output-dir


@dataclass(frozen=True)
class Resolved:
    files: list[InputFile]
    problems: list[str]  # one "path: reason" line per argument that named nothing usable


def _is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def _glob_root(pattern: str) -> Path:
    """The folder part of a pattern before its first wildcard: 'notes/**/*.jpg' -> 'notes'."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if _GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _walk(folder: Path) -> list[Path]:
    found = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / n for n in names if not n.startswith(".") and _is_supported(Path(n))]
    return found


def read_file_list(source, null_separated: bool) -> list[str]:
    """Paths from a --files-from list: one a line, or NUL-separated (``find -print0``).

    ``source`` is a binary stream; names are decoded like the OS does (undecodable bytes survive).
    """
    data = source.read()
    parts = data.split(b"\0") if null_separated else data.splitlines()
    return [os.fsdecode(p) for p in parts if p.strip(b"\r\n" if not null_separated else b"")]


def resolve_inputs(args: list[str], literal: list[str] | None = None) -> Resolved:
    """Expand files, folders (recursively) and glob patterns (``**`` included) in a stable order.

    ``literal`` paths (from --files-from) are taken as they are, never as patterns. Files named
    explicitly with an unsupported suffix, and arguments that match nothing, are reported in
    ``problems``; inside folders and globs, unsupported files are skipped silently.
    """
    files: list[InputFile] = []
    problems: list[str] = []
    seen: set[Path] = set()

    def add(path: Path, root: Path | None) -> None:
        try:
            key = path.resolve()
        except (OSError, RuntimeError):  # symlink loops
            key = Path(os.path.abspath(path))
        if key in seen:
            return
        seen.add(key)
        if root is None:
            rel = Path(path.name)
        else:
            try:
                rel = path.relative_to(root)
            except ValueError:
                rel = Path(path.name)
        files.append(InputFile(path, str(path), rel))

    entries = [(a, True) for a in args] + [(a, False) for a in (literal or [])]
    for arg, may_glob in entries:
        path = Path(arg)
        if path.is_dir():
            matches = sorted(_walk(path))
            if not matches:
                problems.append(f"{arg}: folder has no JPEG/PNG/BMP/TIFF/PDF files")
            for p in matches:
                add(p, path)
        elif os.path.lexists(path) and not path.is_dir():
            if not _is_supported(path):
                problems.append(f"{arg}: unsupported file type {path.suffix or '(none)'!r} (use JPEG, PNG, BMP, TIFF or PDF)")
            else:
                add(path, None)
        elif may_glob and _GLOB_CHARS & set(arg):
            root = _glob_root(arg)
            matches = sorted(Path(p) for p in glob.glob(arg, recursive=True))
            matches = [p for p in matches if not p.is_dir() and _is_supported(p)]
            if not matches:
                problems.append(f"{arg}: pattern matched no supported files")
            for p in matches:
                add(p, root)
        else:
            problems.append(f"{arg}: no such file or folder")
    return Resolved(files, problems)


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' -> (I, N) with 0 <= I < N, e.g. '$SLURM_ARRAY_TASK_ID/8'. Raises ValueError."""
    index, sep, count = text.partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise ValueError(f"--shard {text!r}: expected I/N, e.g. 0/4")
    i, n = int(index), int(count)
    if n < 1 or i >= n:
        raise ValueError(f"--shard {text!r}: I must be 0..N-1 and N at least 1")
    return i, n


def shard_of(f: InputFile, count: int) -> int:
    """The shard an input belongs to, from a hash of its path as given (not its position in the list).

    Every shard of a job array runs the same command, so each sees the same paths; hashing them
    keeps a file in the same shard when other files appear or disappear between runs (a cron job
    on several hosts over a growing folder never skips or doubles a file).
    """
    digest = hashlib.blake2b(os.fsencode(f.display), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def select_shard(files: list[InputFile], index: int, count: int) -> list[InputFile]:
    """The inputs of shard ``index`` of ``count``, in their sorted order; shards are disjoint and cover all."""
    return [f for f in files if shard_of(f, count) == index]
