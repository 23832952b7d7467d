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
    d = {
        "schema_version": JSON_SCHEMA_VERSION,
        "tool": {"name": "ocrcli", "version": __version__},
        "model": {"id": run.model_id, "sha256": run.model_sha256},
        "path": doc.path,
        "text": doc.text,
    }
    if doc.page_errors:
        d["errors"] = list(doc.page_errors)
    d["pages"] = [page.to_dict() for page in doc.pages]
    return d


def to_json(doc: DocumentResult, run: RunInfo) -> str:
    return json.dumps(to_json_dict(doc, run), ensure_ascii=False, indent=2) + "\n"


def to_json_line(doc: DocumentResult, run: RunInfo) -> str:
    return json.dumps(to_json_dict(doc, run), ensure_ascii=False, separators=(",", ":")) + "\n"


def _hocr(doc: DocumentResult, run: RunInfo) -> str:
    from ocrcli.archive import to_hocr

    return to_hocr(doc, run)


def _alto(doc: DocumentResult, run: RunInfo) -> str:
    from ocrcli.archive import to_alto

    return to_alto(doc, run)


def _page(doc: DocumentResult, run: RunInfo) -> list[str]:
    from ocrcli.archive import to_page_xml

    return to_page_xml(doc, run)


def _pdf(doc: DocumentResult, run: RunInfo) -> bytes:
    from ocrcli.pdfout import to_pdf

    return to_pdf(doc, run)


@dataclass(frozen=True)
class Writer:
    suffix: str
    render: Callable[[DocumentResult, RunInfo], str | bytes | list[str]]
    render_stdout: Callable[[DocumentResult, RunInfo], str] | None = None  # None: not for --stdout
    per_page: bool = False  # render returns one document per page (PAGE XML describes one image)
    needs_images: bool = False  # the pages' images must be kept for it


WRITERS: dict[str, Writer] = {
    "txt": Writer(".txt", to_text, to_text),
    "json": Writer(".json", to_json, to_json_line),  # on stdout: JSON Lines, one object per input
    "hocr": Writer(".hocr", _hocr),
    "alto": Writer(".alto.xml", _alto),
    "page": Writer(".page.xml", _page, per_page=True),
    "pdf": Writer(".ocr.pdf", _pdf, needs_images=True),
}


def page_path(path: Path, suffix: str, number: int) -> Path:
    """Where page ``number`` (> 1) of a per-page format goes: scan.page.xml -> scan.p2.page.xml."""
    return path.with_name(path.name[: -len(suffix)] + f".p{number}" + suffix)


def write_output(path: Path, writer: Writer, content: str | bytes | list[str]) -> list[Path]:
    """Write one format's output atomically; per-page formats write pages 2.. first, page 1 last,
    so the main file existing means the whole output exists."""
    if not isinstance(content, list):
        atomic_write(path, content)
        return [path]
    written = []
    for number, part in enumerate(content[1:], 2):
        extra = page_path(path, writer.suffix, number)
        atomic_write(extra, part)
        written.append(extra)
    atomic_write(path, content[0] if content else "")
    return [path] + written


def _file_mode() -> int:
    """0o666 less the process umask: what open() would have given (mkstemp gives 0o600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it: never a half-written file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write output ({exc.strerror or exc})") from None
    try:
        with (os.fdopen(fd, "wb") if isinstance(data, bytes) else os.fdopen(fd, "w", encoding="utf-8", newline="")) as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OutputError(f"{path}: cannot write output ({exc.strerror or exc})") from None
        raise
