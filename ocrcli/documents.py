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


@dataclass(frozen=True)
class ColumnShift:
    """A geometric step that moves each column of an image up or down (curved lines straightened):
    the new image's pixel (x, y) is the old image's (x, y + dy[x])."""

    dy: np.ndarray  # float32, one shift per column of the new image

    def _at(self, xs: np.ndarray) -> np.ndarray:
        return np.interp(xs, np.arange(len(self.dy)), self.dy)

    def to_old(self, pts: np.ndarray) -> np.ndarray:
        return np.c_[pts[:, 0], pts[:, 1] + self._at(pts[:, 0])]

    def to_new(self, pts: np.ndarray) -> np.ndarray:
        return np.c_[pts[:, 0], pts[:, 1] - self._at(pts[:, 0])]


# A box's edges on a page whose columns were shifted are curves on the input: its polygon there
# follows them through this many points along each of its top and bottom edges.
CURVE_POINTS = 9


@dataclass
class Page:
    """One page image moving through the stages, with the steps applied so far."""

    image: np.ndarray  # uint8, (H, W) grayscale or (H, W, 3) BGR
    number: int  # 1-based page number within its input file
    source_size: tuple[int, int]  # (width, height) as decoded, before any stage
    steps: list[dict] = field(default_factory=list)
    ink: np.ndarray | None = None  # uint8 mask (255 = ink) from the binarize stage, same size as image
    # The geometric steps from the decoded image's pixels to this image's, in order: 3x3 maps in
    # homogeneous coordinates (paper: a perspective map; upscale, deskew, orient: affine) and
    # column shifts (curved lines straightened).
    geometry: tuple = ()

    @property
    def transform(self) -> np.ndarray:
        """The 3x3 map from the decoded image's pixels to this image's (exact when no column shift
        is among the steps, which only pages with curved lines have)."""
        m = np.eye(3)
        for g in self.geometry:
            if not isinstance(g, ColumnShift):
                m = g @ m
        return m

    def with_image(self, image: np.ndarray, ink: np.ndarray | None, step: dict | None,
                   matrix: np.ndarray | ColumnShift | None = None) -> Page:
        """A copy of this page with a new image (and mask), recording the step that made it.

        ``matrix`` (2x3 or 3x3, or a ColumnShift) maps the old image's pixels to the new one's, for
        geometric steps.
        """
        steps = self.steps + ([step] if step else [])
        geometry = self.geometry
        if matrix is not None:
            if not isinstance(matrix, ColumnShift) and matrix.shape == (2, 3):
                matrix = np.vstack([matrix, [0, 0, 1]])
            geometry = geometry + (matrix,)
        return Page(image, self.number, self.source_size, steps, ink, geometry)

    def to_page(self, pts: np.ndarray) -> np.ndarray:
        """Points (N x 2) of the decoded image mapped onto this image."""
        pts = np.asarray(pts, float)
        for g in self.geometry:
            pts = g.to_new(pts) if isinstance(g, ColumnShift) else _apply(g, pts)
        return pts

    def to_source(self, box: BBox) -> tuple[BBox, list[tuple[int, int]]]:
        """A box of this image mapped back to the decoded image: its bounding box and polygon (its
        corners, or its edges traced through CURVE_POINTS points each where columns were shifted)."""
        if any(isinstance(g, ColumnShift) for g in self.geometry):
            xs = np.linspace(box.x0, box.x1, CURVE_POINTS)
            pts = np.r_[np.c_[xs, np.full_like(xs, box.y0)], np.c_[xs[::-1], np.full_like(xs, box.y1)]]
        else:
            pts = np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]], float)
        for g in reversed(self.geometry):
            pts = g.to_old(pts) if isinstance(g, ColumnShift) else _apply(np.linalg.inv(g), pts)
        w, h = self.source_size
        xs = np.clip(np.round(pts[:, 0]), 0, w).astype(int)
        ys = np.clip(np.round(pts[:, 1]), 0, h).astype(int)
        polygon = [(int(x), int(y)) for x, y in zip(xs, ys)]
        return BBox(int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())), polygon


def _apply(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Points (N x 2) through a 3x3 map in homogeneous coordinates."""
    out = np.c_[pts, np.ones(len(pts))] @ matrix.T
    return out[:, :2] / out[:, 2:]


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
