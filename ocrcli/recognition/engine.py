"""Batched line recognition with a loaded model: crops in, (text, confidence) out."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ocrcli.errors import DeviceError, ModelError
from ocrcli.recognition.charset import Charset
from ocrcli.recognition.decode import beam_decode, greedy_decode
from ocrcli.recognition.lineimage import fit_rows, normalize_line

MODEL_ENV = "OCRCLI_MODEL"
DEFAULT_MODEL_NAME = "ocrcli-crnn-v1.safetensors"
LM_ENV = "OCRCLI_LM"
# Beam search reads each line with every one of these and keeps the reading that scores best: the
# model of all the training languages, and one of English alone (see models/README.md).
DEFAULT_LM_NAMES = ("ocrcli-charlm-v1.json.gz", "ocrcli-charlm-en-v1.json.gz")
DECODERS = ("beam", "greedy")


def _shipped(name: str) -> Path:
    here = Path(__file__).resolve().parent.parent  # ocrcli/
    for candidate in (here / "models" / name, here.parent / "models" / name):
        if candidate.is_file():
            return candidate
    return here.parent / "models" / name


def default_model_path() -> Path:
    """The model used when none is given: $OCRCLI_MODEL, else the one shipped in models/."""
    env = os.environ.get(MODEL_ENV)
    return Path(env) if env else _shipped(DEFAULT_MODEL_NAME)


def default_lm_paths() -> list[Path]:
    """The language models of beam search when none are given: $OCRCLI_LM (one path, or several
    separated by os.pathsep), else the shipped ones."""
    env = os.environ.get(LM_ENV)
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [_shipped(name) for name in DEFAULT_LM_NAMES]


def lm_paths(given: Path | Sequence[Path] | None) -> list[Path]:
    """The language model files of ``given`` (one path, several, or None: the defaults)."""
    if given is None or (not isinstance(given, (str, Path)) and not given):
        return default_lm_paths()
    return [Path(given)] if isinstance(given, (str, Path)) else [Path(p) for p in given]


def resolve_device(requested: str) -> str:
    """'auto' -> 'cuda' when a GPU is usable, else 'cpu'; an explicit CUDA device must exist."""
    import torch

    requested = requested.strip().lower()
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cpu":
        return "cpu"
    if requested == "cuda" or requested.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {requested!r} requested but no CUDA GPU is available", hint="use --device cpu or auto")
        if ":" in requested:
            try:
                index = int(requested.split(":", 1)[1])
            except ValueError:
                raise DeviceError(f"bad device {requested!r}", hint="use cuda:N with N a GPU number") from None
            if index >= torch.cuda.device_count():
                raise DeviceError(f"device {requested!r} requested but only {torch.cuda.device_count()} GPU(s) present")
        return requested
    raise DeviceError(f"unknown device {requested!r}", hint="use auto, cpu, cuda or cuda:N")


@dataclass(frozen=True)
class LineText:
    text: str
    confidence: float
    char_x: tuple[float, ...] = ()  # x of each character of text, in the crop's pixels (from the CTC alignment)
    char_probs: tuple[float, ...] = ()
    # The best path's confidence (greedy decoding of the same frames; ``confidence`` when not given):
    # comparable between readings decoded differently, unlike beam and greedy confidences.
    path_confidence: float | None = None

    def __post_init__(self) -> None:
        if self.path_confidence is None:
            object.__setattr__(self, "path_confidence", self.confidence)


class Recognizer:
    """Loads a model once and recognises batches of grayscale line crops."""

    def __init__(self, model_path: Path | None = None, device: str = "auto", batch_size: int = 32,
                 precision: str = "auto", decoder: str = "beam", lm_path: Path | Sequence[Path] | None = None,
                 lexicon: bool = True) -> None:
        """``precision``: "fp32", "bf16" (CPU: bfloat16 autocast) or "auto" (bf16 on CPUs that compute
        it natively, fp32 on others; CUDA always runs the model in fp16). ``decoder``: "beam" (CTC
        beam search with the character language models ``lm_path``, one or several, default the
        shipped ones: each line is searched with each, and the reading that scores best is kept) or
        "greedy" (best path: faster, less accurate). ``lexicon``: False leaves the language models'
        lexicons out of the search (words they do not hold are not charged: text in other languages)."""
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, not {decoder!r}")
        self.lms: list = []
        lm_loading = None
        if decoder == "beam":  # read the LM file in a thread while torch loads (its errors are raised below)
            from concurrent.futures import ThreadPoolExecutor

            from ocrcli.recognition.lm import load_lm

            def load_for_search(path: Path):
                lm = load_lm(path)
                lm.compiled()  # read into the C beam search now rather than at the first line
                if not lexicon:
                    lm.oov = 0.0
                if lm.checks_words:
                    lm.lexicon.compiled()
                return lm

            pool = ThreadPoolExecutor(1)
            lm_loading = [pool.submit(load_for_search, path) for path in lm_paths(lm_path)]
            pool.shutdown(wait=False)
        import torch

        self.model_path = Path(model_path) if model_path else default_model_path()
        self.device = resolve_device(device)
        from ocrcli.recognition.weights import file_sha256, load_model

        self.model, self.info = load_model(self.model_path, self.device)
        self.model.fuse_batch_norm()
        if lm_loading is not None:
            self.lms = [loading.result() for loading in lm_loading]
        self.sha256 = file_sha256(self.model_path)
        self.charset = Charset(self.info.alphabet)
        self.batch_size = max(1, batch_size)
        # On the CPU a batch is also bounded in pixels (activation memory, peak RSS); a GPU takes
        # batch_size pieces of any width.
        self.batch_pixels = CPU_BATCH_PIXELS if self.device == "cpu" else self.batch_size * CHUNK_WIDTH
        self._torch = torch
        if self.device.startswith("cuda"):
            self.model.half()
        if precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16, not {precision!r}")
        from ocrcli.runtime import cpu_has_bf16

        self.cpu_bf16 = self.device == "cpu" and (precision == "bf16" or (precision == "auto" and cpu_has_bf16()))
        self._pool, self._pool_key = None, None  # the beam search's threads (_search_pool)

    @property
    def lm(self):
        """The first language model of beam search (None with greedy decoding)."""
        return self.lms[0] if self.lms else None

    @property
    def model_id(self) -> str:
        return self.model_path.stem

    def recognize(self, crops: list[np.ndarray], decoder: str | None = None, fit: bool = True) -> list[LineText]:
        """Text and confidence for each crop (uint8 grayscale, dark ink on light paper), decoded
        with ``decoder`` ("greedy" or "beam"; default: the recognizer's own).

        ``fit``: read the rows ``fit_rows`` keeps (wide margins cut; for crops from elsewhere); False
        for crops whose rows were chosen already (the page segmenter's).

        Lines wider than ``CHUNK_WIDTH`` model pixels are cut into overlapping pieces, so memory and
        time stay bounded whatever the input; the pieces' frames are stitched before decoding.
        """
        if decoder not in (None, *DECODERS):
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, not {decoder!r}")
        if decoder == "beam" and self.lm is None:
            raise ValueError("beam decoding needs the language model: load the recognizer with decoder='beam'")
        beam = self.lm is not None and decoder != "greedy"
        all_frames, widths = self._frames(crops, fit)

        def read(i: int) -> LineText:
            frames = all_frames[i]
            best_path = greedy_decode(frames)
            decoded = best_path
            if beam:  # with several language models, the reading that scores best under its own
                decoded = max((beam_decode(frames, self.charset.alphabet, lm) for lm in self.lms), key=lambda d: d.score)
            scale = self.model.spec.width_stride * crops[i].shape[1] / widths[i]  # frame -> crop pixels
            xs = tuple((f + 0.5) * scale for f in decoded.frames)
            return LineText(self.charset.decode(decoded.labels), decoded.confidence, xs, tuple(decoded.probs),
                            best_path.confidence)

        results: list[LineText] = [LineText("", 0.0)] * len(crops)
        todo = [i for i, frames in enumerate(all_frames) if frames is not None]
        pool = self._search_pool() if beam and len(todo) > 1 and all(lm.compiled() for lm in self.lms) else None
        for i, text in zip(todo, pool.map(read, todo) if pool else map(read, todo)):
            results[i] = text
        return results

    def _search_pool(self):
        """Threads for the beam search, as many as torch's (the C search releases the GIL, so lines
        are decoded side by side, with the same results); None with one thread."""
        threads = self._torch.get_num_threads()
        if threads < 2:
            return None
        pool = self._pool
        if pool is None or self._pool_key != (os.getpid(), threads):  # threads do not survive a fork
            from concurrent.futures import ThreadPoolExecutor

            pool = self._pool = ThreadPoolExecutor(threads, thread_name_prefix="ocrcli-search")
            self._pool_key = (os.getpid(), threads)
        return pool

    def log_probs(self, crops: list[np.ndarray], fit: bool = True) -> list[np.ndarray | None]:
        """The model's (frames, classes) log-probabilities for each crop (None for an empty crop),
        for scoring candidate texts with CTC (``ocr adapt`` aligns transcriptions this way);
        ``fit`` as for ``recognize``."""
        return self._frames(crops, fit)[0]

    def _frames(self, crops: list[np.ndarray], fit: bool = True) -> tuple[list[np.ndarray | None], list[int]]:
        torch = self._torch
        spec = self.model.spec
        stride = spec.width_stride
        prepared = [normalize_line(fit_rows(c) if fit else c, spec.height, max_width=MAX_LINE_WIDTH) if c.size else None
                    for c in crops]
        pieces = [(i, start, piece) for i, p in enumerate(prepared) if p is not None for start, piece in _chunks(p, stride)]
        order = sorted(range(len(pieces)), key=lambda k: pieces[k][2].shape[1])
        frames: list[list[tuple[int, np.ndarray]]] = [[] for _ in crops]
        with torch.inference_mode():
            for idx in _batches(order, [pieces[k][2].shape[1] for k in order], self.batch_size, self.batch_pixels):
                width = -(-max(pieces[k][2].shape[1] for k in idx) // WIDTH_STEP) * WIDTH_STEP
                batch = np.zeros((len(idx), 1, spec.height, width), np.float32)
                for j, k in enumerate(idx):
                    batch[j, 0, :, : pieces[k][2].shape[1]] = pieces[k][2]
                x = torch.from_numpy(batch).to(self.device)
                if self.device.startswith("cuda"):
                    x = x.half()
                try:
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cpu_bf16):
                        out = self.model(x).float().cpu().numpy()
                except RuntimeError as exc:
                    raise ModelError(f"{self.model_path}: recognition failed ({str(exc)[:200]})") from None
                for j, k in enumerate(idx):
                    i, start, piece = pieces[k]
                    frames[i].append((start, out[: max(1, piece.shape[1] // stride), j]))
        stitched = [_stitch(sorted(parts, key=lambda p: p[0]), stride) if parts else None for parts in frames]
        return stitched, [p.shape[1] if p is not None else 0 for p in prepared]


CHUNK_WIDTH = 2048  # model pixels per piece of a wide line (512 frames at stride 4)
CHUNK_OVERLAP = 128  # pixels shared by neighbouring pieces; each keeps the half nearer its own centre
MAX_LINE_WIDTH = 200_000  # wider normalised lines are squeezed: nothing real is this long


# Most padded width in one CPU batch (x model height): bounds activation memory. Measured on 1000
# val lines (`ocr eval`, 4 interleaved runs each): 6,144 -> peak RSS 526-602 MB, 3,072 -> 479-516 MB,
# at the same speed within the machine's noise (153-226 vs 170-183 lines/s).
CPU_BATCH_PIXELS = 3_072
WIDTH_STEP = 128  # batches are padded to a multiple of this: few distinct shapes for the kernels to cache


def _batches(order: list[int], widths: list[int], batch_size: int, max_pixels: int) -> list[list[int]]:
    """Consecutive runs of ``order`` (sorted by width) of at most ``batch_size`` lines and
    ``max_pixels`` padded columns, so a batch of long lines is smaller than one of short lines."""
    batches, current, widest = [], [], 0
    for k, w in zip(order, widths):
        if current and (len(current) >= batch_size or max(widest, w) * (len(current) + 1) > max_pixels):
            batches.append(current)
            current, widest = [], 0
        current.append(k)
        widest = max(widest, w)
    if current:
        batches.append(current)
    return batches


def _chunks(line: np.ndarray, stride: int) -> list[tuple[int, np.ndarray]]:
    """(start, piece) pairs covering a normalised line; one piece unless it is wider than CHUNK_WIDTH."""
    width = line.shape[1]
    if width <= CHUNK_WIDTH:
        return [(0, line)]
    step = CHUNK_WIDTH - CHUNK_OVERLAP
    starts = list(range(0, width - CHUNK_OVERLAP, step))
    return [(s, line[:, s:s + CHUNK_WIDTH]) for s in starts]


def _stitch(parts: list[tuple[int, np.ndarray]], stride: int) -> np.ndarray:
    """Join the pieces' (T, C) frames into one line's frames, cutting each overlap in its middle."""
    if len(parts) == 1:
        return parts[0][1]
    half = CHUNK_OVERLAP // 2 // stride
    kept = []
    for n, (start, out) in enumerate(parts):
        lo = 0 if n == 0 else half
        hi = len(out) if n == len(parts) - 1 else len(out) - half
        kept.append(out[lo:hi])
    return np.concatenate(kept)
