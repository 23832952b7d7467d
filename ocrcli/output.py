"""Output writers, one registry entry per format, and atomic file writes."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ocrcli import __version__
from ocrcli.documents import DocumentResult
from ocrcli.errors import OutputError

JSON_SCHEMA_VERSION = "1.0"


@dataclass(frozen=True)
class RunInfo:
    """What every output records about how it was made."""

    model_id: str
    model_sha256: str
    device: str


def to_text(doc: DocumentResult, run: RunInfo) -> str:
    """UTF-8 text: one recognised line per line, pages separated by a form feed."""
    text = doc.text
    return text + "\n" if text else ""


def to_json_dict(doc: DocumentResult, run: RunInfo) -> dict:
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "tool": {"name": "ocrcli", "version": __version__},
        "model": {"id": run.model_id, "sha256": run.model_sha256},
        "path": doc.path,
        "text": doc.text,
        "pages": [page.to_dict() for page in doc.pages],
    }


def to_json(doc: DocumentResult, run: RunInfo) -> str:
    return json.dumps(to_json_dict(doc, run), ensure_ascii=False, indent=2) + "\n"


def to_json_line(doc: DocumentResult, run: RunInfo) -> str:
    return json.dumps(to_json_dict(doc, run), ensure_ascii=False, separators=(",", ":")) + "\n"


@dataclass(frozen=True)
class Writer:
    suffix: str
    render: Callable[[DocumentResult, RunInfo], str]
    render_stdout: Callable[[DocumentResult, RunInfo], str]


WRITERS: dict[str, Writer] = {
    "txt": Writer(".txt", to_text, to_text),
    "json": Writer(".json", to_json, to_json_line),  # on stdout: JSON Lines, one object per input
}


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it: never a half-written file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write output ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OutputError(f"{path}: cannot write output ({exc.strerror or exc})") from None
        raise
