"""Settings for one run, as frozen dataclasses built once by the CLI (or an API caller)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class PreprocessConfig:
    """Which preprocessing stages run. Each can be switched off from the CLI."""

    exif_orientation: bool = True
    orient: bool = True  # pages turned by 90, 180 or 270 degrees are turned upright
    paper: bool = True  # a photographed sheet is cut out of its surround and squared up
    upscale: bool = True
    deskew: bool = True
    straighten: bool = True  # curved lines are straightened (with deskew)
    binarize: bool = True
    denoise: bool = True
    # Pages whose typical letter height is below this (pixels) are upscaled before segmentation.
    min_text_height: int = 20
    max_deskew_degrees: float = 15.0


@dataclass(frozen=True)
class RecognizeConfig:
    model_path: Path | None = None  # None: the shipped default model
    device: str = "auto"
    batch_size: int = 32
    precision: str = "auto"  # CPU: "bf16" autocast where the CPU computes it natively ("auto"), or "fp32"
    decoder: str = "beam"  # "beam": CTC beam search with the character language model; "greedy": best path
    lm_path: Path | tuple[Path, ...] | None = None  # None: the shipped language models
    lexicon: bool = True  # False: beam search leaves the language model's lexicon out (no charge for unknown words)


@dataclass(frozen=True)
class RunConfig:
    """Everything `ocr recognize` needs besides the input paths."""

    layout: str = "page"  # "page": find lines; "line": each image is one line
    formats: tuple[str, ...] = ("txt",)
    output_dir: Path | None = None  # None: beside each input
    to_stdout: bool = False
    dpi: int = 200
    save_stages: Path | None = None
    overwrite: bool = True
    review_below: float | None = None  # lines under this confidence get "review": true
    keep_fragments: bool = False  # page layout: keep short low-confidence lines (pipeline.is_fragment)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    recognize: RecognizeConfig = field(default_factory=RecognizeConfig)
