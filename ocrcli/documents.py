"""Typed containers passed between stages, each with a ``to_dict()`` for JSON output."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class BBox:
    """Axis-aligned box in page pixels: left, top, right (exclusive), bottom (exclusive)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def to_list(self) -> list[int]:
        return [self.x0, self.y0, self.x1, self.y1]


@dataclass
class Page:
    """One page image moving through the stages, with the steps applied so far."""

    image: np.ndarray  # uint8, (H, W) grayscale or (H, W, 3) BGR
    number: int  # 1-based page number within its input file
    source_size: tuple[int, int]  # (width, height) as decoded, before any stage
    steps: list[dict] = field(default_factory=list)
    ink: np.ndarray | None = None  # uint8 mask (255 = ink) from the binarize stage, same size as image
    # 3x3 map from the decoded image's pixels to this image's pixels (paper: a perspective map;
    # upscale, deskew, orient: affine), in homogeneous coordinates.
    transform: np.ndarray = field(default_factory=lambda: np.eye(3))

    def with_image(self, image: np.ndarray, ink: np.ndarray | None, step: dict | None,
                   matrix: np.ndarray | None = None) -> Page:
        """A copy of this page with a new image (and mask), recording the step that made it.

        ``matrix`` (2x3 or 3x3) maps the old image's pixels to the new one's, for geometric steps.
        """
        steps = self.steps + ([step] if step else [])
        transform = self.transform
        if matrix is not None:
            m = np.vstack([matrix, [0, 0, 1]]) if matrix.shape == (2, 3) else matrix
            transform = m @ transform
        return Page(image, self.number, self.source_size, steps, ink, transform)

    def to_source(self, box: BBox) -> tuple[BBox, list[tuple[int, int]]]:
        """A box of this image mapped back to the decoded image: its bounding box and corner polygon."""
        inverse = np.linalg.inv(self.transform)
        corners = np.array([[box.x0, box.y0, 1], [box.x1, box.y0, 1], [box.x1, box.y1, 1], [box.x0, box.y1, 1]], float)
        pts = corners @ inverse.T
        pts = pts[:, :2] / pts[:, 2:]
        w, h = self.source_size
        xs = np.clip(np.round(pts[:, 0]), 0, w).astype(int)
        ys = np.clip(np.round(pts[:, 1]), 0, h).astype(int)
        polygon = [(int(x), int(y)) for x, y in zip(xs, ys)]
        return BBox(int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())), polygon


@dataclass(frozen=True)
class Line:
    """A text line found on a page (coordinates in the preprocessed page's pixels)."""

    bbox: BBox
    polygon: list[tuple[int, int]] | None = None


@dataclass(frozen=True)
class WordResult:
    text: str
    confidence: float
    bbox: BBox

    def to_dict(self) -> dict:
        return {"text": self.text, "confidence": round(self.confidence, 4), "bbox": self.bbox.to_list()}


@dataclass(frozen=True)
class LineResult:
    text: str
    confidence: float
    bbox: BBox
    polygon: list[tuple[int, int]] | None = None
    words: list[WordResult] = field(default_factory=list)
    review: bool = False  # confidence under the --review-below threshold

    def to_dict(self) -> dict:
        d = {"text": self.text, "confidence": round(self.confidence, 4), "bbox": self.bbox.to_list()}
        if self.polygon is not None:
            d["polygon"] = [list(p) for p in self.polygon]
        d["words"] = [w.to_dict() for w in self.words]
        if self.review:
            d["review"] = True
        return d


@dataclass(frozen=True)
class PageResult:
    number: int
    width: int
    height: int
    lines: list[LineResult]
    steps: list[dict] = field(default_factory=list)
    image: bytes | None = field(default=None, repr=False, compare=False)  # JPEG of the page, kept for PDF output

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def to_dict(self) -> dict:
        return {
            "number": self.number,
            "width": self.width,
            "height": self.height,
            "preprocessing": self.steps,
            "lines": [line.to_dict() for line in self.lines],
        }


@dataclass(frozen=True)
class DocumentResult:
    """Everything recognised in one input file."""

    path: str  # the input as the user gave it (or as found under a given directory)
    pages: list[PageResult]
    page_errors: list[str] = field(default_factory=list)  # pages of a multi-page file that could not be read

    @property
    def text(self) -> str:
        """All text: lines joined by newlines, pages by form feeds."""
        return "\f".join(page.text for page in self.pages)
