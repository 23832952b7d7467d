"""The `ocr` command line: options -> config, run the pipeline, map errors to exit codes.

Heavy modules (torch, OpenCV, the pipeline) are imported inside the commands, so `ocr --help`
and usage errors stay fast.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ocrcli import __version__
from ocrcli.errors import ExitCode, OcrError, UsageError

app = typer.Typer(
    name="ocr",
    help="Offline OCR for handwritten notes, letters and forms.\n\n"
    "Example: ocr recognize notes/*.jpg --format json --output-dir out/",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Format(str, Enum):
    txt = "txt"
    json = "json"
    hocr = "hocr"
    alto = "alto"
    page = "page"
    pdf = "pdf"


class Decoder(str, Enum):
    beam = "beam"
    greedy = "greedy"


DECODER_HELP = ("beam: CTC beam search with the shipped character language models (the most accurate); "
                "greedy: best path, about 1.5 times the lines/s (make bench), more errors.")
LM_HELP = ("Character language model for --decoder beam instead of the shipped ones; repeat it to search each line with "
           "each model and keep the best-scoring reading (also $OCRCLI_LM, paths separated by ':').")
NO_LEXICON_HELP = ("Leave the language models' lexicons out of --decoder beam: words they do not hold (English, French "
                   "and German) are not penalised; for text in other languages.")


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


class Smoothing(str, Enum):
    kneser_ney = "kneser-ney"
    absolute = "absolute"


class Engine(str, Enum):
    local = "local"
    ray = "ray"


class Layout(str, Enum):
    page = "page"
    line = "line"


class Terminated(BaseException):
    """SIGTERM turned into an exception so the batch unwinds like on Ctrl-C."""


def _on_sigterm(signum, frame):  # noqa: ARG001 - signal handler signature
    raise Terminated()


def one_line(message: str) -> str:
    """Escape newlines and other control characters (they can come from file names)."""
    return "".join(ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii") for ch in message)


def _err(message: str) -> None:
    print(one_line(message), file=sys.stderr, flush=True)


def _version_callback(value: bool) -> None:
    if value:
        print(f"ocrcli {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version_callback, is_eager=True,
                                                     help="Print the version and exit.")] = None,
) -> None:
    """Offline OCR for handwritten notes, letters and forms."""


def _validate_device(device: str) -> str:
    d = device.strip().lower()
    if d in ("auto", "cpu", "cuda") or (d.startswith("cuda:") and d[5:].isdigit()):
        return d
    raise UsageError(f"--device {device!r} is not one of auto, cpu, cuda, cuda:N")


@app.command()
def recognize(
    paths: Annotated[Optional[list[str]], typer.Argument(help="Files, folders (searched recursively) or glob patterns, e.g. 'scans/**/*.tif'.",
                                                         show_default=False)] = None,
    files_from: Annotated[Optional[str], typer.Option("--files-from", help="Also read input paths from this file, one a line ('-' for stdin).")] = None,
    null: Annotated[bool, typer.Option("--null", "-0", help="--files-from entries are NUL-separated, as from 'find -print0'.")] = False,
    fmt: Annotated[list[Format], typer.Option("--format", "-f", help="Output format, repeatable (-f txt -f alto): txt, json, hocr (.hocr), alto (ALTO v4, .alto.xml), page (PAGE XML 2019, .page.xml; one file per page), pdf (searchable PDF, .ocr.pdf).")] = [Format.txt],  # noqa: B006
    output_dir: Annotated[Optional[Path], typer.Option("--output-dir", "-o", help="Write outputs here, mirroring input folders (default: beside each input).")] = None,
    stdout: Annotated[bool, typer.Option("--stdout", help="Print results instead of writing files (json: one JSON object per input per line).")] = False,
    layout: Annotated[Layout, typer.Option("--layout", help="page: find the text lines; line: every image is one pre-cropped text line.")] = Layout.page,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N (auto uses a GPU when there is one).")] = "auto",
    model: Annotated[Optional[Path], typer.Option("--model", help="Model file to use instead of the shipped one (also $OCRCLI_MODEL).")] = None,
    dpi: Annotated[int, typer.Option("--dpi", help="Resolution for rendering PDF pages.", min=50, max=1200)] = 200,
    save_stages: Annotated[Optional[Path], typer.Option("--save-stages", help="Write the image after each stage and the found lines to this folder.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Redo inputs whose outputs already exist (default: skip them, so a rerun resumes).")] = False,
    no_exif: Annotated[bool, typer.Option("--no-exif", help="Ignore the EXIF orientation of photos (keep pixels as stored).")] = False,
    no_orient: Annotated[bool, typer.Option("--no-orient", help="Do not turn pages scanned sideways or upside down.")] = False,
    no_paper: Annotated[bool, typer.Option("--no-paper", help="Do not cut a photographed sheet out of the desk around it (read the whole frame).")] = False,
    no_upscale: Annotated[bool, typer.Option("--no-upscale", help="Do not enlarge small text.")] = False,
    no_deskew: Annotated[bool, typer.Option("--no-deskew", help="Do not level skewed pages (nor straighten curved lines).")] = False,
    no_straighten: Annotated[bool, typer.Option("--no-straighten", help="Level skewed pages, but do not straighten curved lines (a sheet photographed bent).")] = False,
    no_binarize: Annotated[bool, typer.Option("--no-binarize", help="Do not flatten lighting before finding ink (a global threshold is used).")] = False,
    no_denoise: Annotated[bool, typer.Option("--no-denoise", help="Do not remove specks before finding lines.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Lines recognised together.", min=1, max=4096)] = 32,
    precision: Annotated[Precision, typer.Option("--precision", help="CPU arithmetic: auto (bfloat16 on CPUs with native support, 1.4x faster, same CER on val), bf16 or fp32.")] = Precision.auto,
    decoder: Annotated[Decoder, typer.Option("--decoder", help=DECODER_HELP)] = Decoder.beam,
    lm: Annotated[Optional[list[Path]], typer.Option("--lm", help=LM_HELP)] = None,
    no_lexicon: Annotated[bool, typer.Option("--no-lexicon", help=NO_LEXICON_HELP)] = False,
    review_below: Annotated[Optional[float], typer.Option("--review-below", min=0.0, max=1.0,
                                                          help="Mark lines with confidence under this as \"review\": true in JSON and count them.")] = None,
    keep_fragments: Annotated[bool, typer.Option("--keep-fragments", help="Keep short lines (<= 10 characters) read with confidence under 0.3; by default the page path drops them (mostly pieces of stamps and of neighbouring lines).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary; errors are still printed.")] = False,
    shard: Annotated[Optional[str], typer.Option("--shard", metavar="I/N", help="Process only shard I of N (0-based) of the sorted inputs, for job arrays: --shard $SLURM_ARRAY_TASK_ID/8. Shards are disjoint and cover every input.")] = None,
    engine: Annotated[Engine, typer.Option("--engine", help="local: this process; ray: a pool of Ray Data actors (pip install 'ocrcli[ray]'), on this machine or a cluster.")] = Engine.local,
    address: Annotated[Optional[str], typer.Option("--address", help="With --engine ray: the cluster to join ('auto' for the one started with 'ray start', or ray://HOST:10001); default $RAY_ADDRESS, else a local Ray.")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="With --engine ray: number of workers, each holding the model (default: as many as the cluster's CPUs or GPUs allow).")] = None,
    cpus_per_worker: Annotated[float, typer.Option("--cpus-per-worker", min=0.1, help="With --engine ray: CPUs reserved per worker (and its torch threads).")] = 1.0,
    gpus_per_worker: Annotated[float, typer.Option("--gpus-per-worker", min=0.0, help="With --engine ray: GPUs per worker, e.g. 0.25 for four workers per GPU.")] = 0.0,
) -> None:
    """Transcribe handwritten pages (JPEG, PNG, BMP, TIFF, PDF) into text, JSON, hOCR, ALTO, PAGE XML or searchable PDF.

    Examples:

      ocr recognize notes/*.jpg

      ocr recognize scans/ --format json --output-dir out/

      ocr recognize 'archive/**/*.pdf' --dpi 300 -f txt -f json

      ocr recognize letters/ -f alto -f pdf -o archive/

      ocr recognize --layout line --format json --stdout line1.png line2.png

      find inbox -name '*.jpg' -print0 | ocr recognize --files-from - -0 -o out/

      ocr recognize /shared/scans/ -o /shared/out/ --engine ray --address auto --gpus-per-worker 0.25

      ocr recognize /shared/scans/ -o /shared/out/ --shard $SLURM_ARRAY_TASK_ID/16
    """
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = _recognize(paths or [], files_from, null, fmt, output_dir, stdout, layout, device, model, dpi, save_stages,
                          overwrite, no_exif, no_upscale, no_deskew, no_binarize, no_denoise, batch_size, review_below, quiet,
                          precision.value, shard, engine.value, address, workers, cpus_per_worker, gpus_per_worker,
                          decoder=decoder.value, lm=lm, keep_fragments=keep_fragments, no_orient=no_orient,
                          no_paper=no_paper, no_straighten=no_straighten, no_lexicon=no_lexicon)
    except OcrError as exc:
        _err(f"error: {exc}")
        code = exc.exit_code
    except KeyboardInterrupt:
        _err("interrupted: outputs written so far are complete; run the same command again to finish the rest")
        code = ExitCode.INTERRUPTED
    except Terminated:
        _err("terminated: outputs written so far are complete; run the same command again to finish the rest")
        code = 143
    raise typer.Exit(int(code))


def _recognize(paths, files_from, null, fmt, output_dir, stdout, layout, device, model, dpi, save_stages, overwrite,
               no_exif, no_upscale, no_deskew, no_binarize, no_denoise, batch_size, review_below, quiet,
               precision: str = "auto", shard: str | None = None, engine: str = "local", address: str | None = None,
               workers: int | None = None, cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0,
               decoder: str = "beam", lm: list[Path] | None = None, keep_fragments: bool = False, no_orient: bool = False,
               no_paper: bool = False, no_straighten: bool = False, no_lexicon: bool = False) -> int:
    from ocrcli.runtime import limit_memory, quiet_decoders

    limit_memory()
    quiet_decoders()
    from ocrcli.config import PreprocessConfig, RecognizeConfig, RunConfig

    # Validate everything cheap before touching the model or any file.
    formats = tuple(dict.fromkeys(f.value for f in fmt))
    device = _validate_device(device)
    if output_dir is not None and output_dir.exists() and not output_dir.is_dir():
        raise UsageError(f"--output-dir {output_dir}: exists and is not a folder")
    if stdout and any(f not in ("txt", "json") for f in formats):
        raise UsageError("--stdout prints txt or json only; write the other formats to files")
    if stdout and output_dir is not None:
        raise UsageError("--stdout and --output-dir cannot be used together")
    if not paths and files_from is None:
        raise UsageError("give input paths, or --files-from FILE", hint="see ocr recognize --help")
    if null and files_from is None:
        raise UsageError("-0/--null only applies to --files-from")
    if engine != "ray" and (address is not None or workers is not None or gpus_per_worker or cpus_per_worker != 1.0):
        raise UsageError("--address, --workers, --cpus-per-worker and --gpus-per-worker need --engine ray")
    shard_spec = None
    if shard is not None:
        from ocrcli.inputs import parse_shard

        try:
            shard_spec = parse_shard(shard)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    listed: list[str] = []
    if files_from is not None:
        from ocrcli.inputs import read_file_list

        try:
            if files_from == "-":
                listed = read_file_list(sys.stdin.buffer, null)
            else:
                with open(files_from, "rb") as fh:
                    listed = read_file_list(fh, null)
        except OSError as exc:
            raise UsageError(f"--files-from {files_from}: cannot read ({exc.strerror or exc})") from None
    if model is not None and not model.is_file():
        from ocrcli.errors import ModelError

        raise ModelError(f"{model}: model file not found")
    if lm and decoder != "beam":
        raise UsageError("--lm is the language model of --decoder beam")
    if no_lexicon and decoder != "beam":
        raise UsageError("--no-lexicon is an option of --decoder beam")
    cfg = RunConfig(
        layout=layout.value, formats=formats, output_dir=output_dir, to_stdout=stdout, dpi=dpi,
        save_stages=save_stages, overwrite=overwrite, review_below=review_below, keep_fragments=keep_fragments,
        preprocess=PreprocessConfig(exif_orientation=not no_exif, orient=not no_orient, paper=not no_paper,
                                    upscale=not no_upscale, deskew=not no_deskew, straighten=not no_straighten,
                                    binarize=not no_binarize, denoise=not no_denoise),
        recognize=RecognizeConfig(model_path=model, device=device, batch_size=batch_size, precision=precision,
                                  decoder=decoder, lm_path=tuple(lm) if lm else None, lexicon=not no_lexicon),
    )
    from ocrcli.api import find_inputs
    from ocrcli.inputs import select_shard

    resolved = find_inputs(paths, listed)
    for problem in resolved.problems:
        _err(problem)
    if not resolved.files:
        from ocrcli.errors import NoInputError

        raise NoInputError("no input files found", hint="give JPEG, PNG, BMP, TIFF or PDF files, folders or patterns")
    files = select_shard(resolved.files, *shard_spec) if shard_spec else resolved.files  # may be empty: that's fine

    def emit(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    started = time.perf_counter()
    devices: set[str] = set()
    if engine == "ray":
        from ocrcli.distributed import RayOptions, run_on_ray
        from ocrcli.recognition.engine import default_model_path

        model_path = cfg.recognize.model_path or default_model_path()
        if not model_path.is_file():
            from ocrcli.errors import ModelError

            raise ModelError(f"{model_path}: model file not found")
        options = RayOptions(address, workers, cpus_per_worker, gpus_per_worker)
        outcomes = run_on_ray(files, cfg, options, model_path, emit, quiet or not sys.stderr.isatty(), devices.add)
    else:
        from ocrcli.pipeline import EarlyPage, FileOutcome, output_paths, outputs_exist, run_batch

        # Inputs whose outputs all exist are skipped; when every one is (a re-run from cron over
        # a finished folder), torch and the model are not loaded at all.
        targets = output_paths(files, cfg)
        todo = [f for f in files if not outputs_exist(targets[f.path], cfg)]
        if todo:
            from ocrcli.api import load_recognizer
            from ocrcli.output import RunInfo

            # The first page to read is read, preprocessed and segmented while torch and the model load.
            early = EarlyPage(todo[0], cfg) if cfg.layout == "page" and not cfg.save_stages else None
            recognizer = load_recognizer(cfg)
            devices.add(recognizer.device)
            run_info = RunInfo(recognizer.model_id, recognizer.sha256, recognizer.device)
            outcomes = run_batch(files, cfg, recognizer, run_info, emit, early)
        else:
            outcomes = iter([FileOutcome(f, skipped=True) for f in files])

    done = failed = skipped = pages = lines = to_review = 0
    output_failed = False
    progress = None
    if not quiet and sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True)
        progress.start()
        task = progress.add_task("recognizing", total=len(files))
    try:
        for outcome in outcomes:
            if outcome.skipped:
                skipped += 1
            elif outcome.error:
                failed += 1
                output_failed |= outcome.output_error
                if progress:
                    progress.console.print(one_line(outcome.error), markup=False, highlight=False)
                else:
                    _err(outcome.error)
            else:
                done += 1
            pages += outcome.pages
            lines += outcome.lines
            to_review += outcome.to_review
            if progress:
                progress.advance(task)
    finally:
        if progress:
            progress.stop()
    failed += len(resolved.problems)
    if not quiet:
        elapsed = time.perf_counter() - started
        skip_note = " (outputs exist; --overwrite to redo them)" if skipped else ""
        where = ", ".join(sorted(devices)) or "-"
        if engine == "ray":
            where = f"ray ({where})"
        if shard_spec:
            where += f"; shard {shard_spec[0]}/{shard_spec[1]}"
        _err(f"{done + failed + skipped} inputs: {done} done, {failed} failed, {skipped} skipped{skip_note}; "
             f"{pages} pages, {lines} lines in {elapsed:.1f} s on {where}"
             + (f"; {to_review} lines to review (confidence < {review_below:g})" if review_below is not None else ""))
    if output_failed:
        return ExitCode.OUTPUT
    return ExitCode.INPUT_FAILED if failed else ExitCode.OK


@app.command("eval")
def eval_cmd(
    data: Annotated[Path, typer.Argument(help="TSV of 'path<TAB>text[<TAB>set]' lines; paths relative to the TSV.", show_default=False)],
    model: Annotated[Optional[Path], typer.Option("--model", help="Model file (default: the shipped one).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    limit: Annotated[Optional[int], typer.Option("--limit", help="Use only the first N lines.", min=1)] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also list the most frequent character confusions.")] = False,
    by_confidence: Annotated[bool, typer.Option("--by-confidence", help="Also give CER per decile of line confidence (does confidence predict errors?).")] = False,
    pages: Annotated[bool, typer.Option("--pages", help="DATA is a pages.jsonl: run the whole pipeline on each page; report line recall/precision and page CER.")] = False,
    compare: Annotated[Optional[list[str]], typer.Option("--compare", help="With --pages: NAME=TSV output of shared/tools/peers.py ... page, shown side by side (repeatable).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=4096)] = 32,
    precision: Annotated[Precision, typer.Option("--precision", help="CPU arithmetic: auto, bf16 or fp32 (as for recognize).")] = Precision.auto,
    decoder: Annotated[Decoder, typer.Option("--decoder", help=DECODER_HELP)] = Decoder.beam,
    lm: Annotated[Optional[list[Path]], typer.Option("--lm", help=LM_HELP)] = None,
    no_lexicon: Annotated[bool, typer.Option("--no-lexicon", help=NO_LEXICON_HELP)] = False,
) -> None:
    """Measure CER and WER on pre-cropped lines, per set and overall.

    Texts (reference and output) are normalised as in shared/data/DATA.md before comparing.

    Examples: ocr eval ../shared/data/val.tsv --by-confidence
              ocr eval --pages ../shared/data/pages.jsonl --compare rapidocr=rapid.tsv
    """
    try:
        from ocrcli.evaluate import evaluate_lines, print_line_report

        device = _validate_device(device)
        if not data.is_file():
            from ocrcli.errors import NoInputError

            raise NoInputError(f"{data}: no such file")
        from ocrcli.runtime import limit_memory

        limit_memory()
        if pages:
            from ocrcli.evaluate import evaluate_pages, print_page_report

            peers = {}
            for item in compare or []:
                name, sep, tsv = item.partition("=")
                if not sep or not Path(tsv).is_file():
                    raise UsageError(f"--compare {item!r}: expected NAME=TSV with an existing TSV")
                peers[name] = Path(tsv)
            print_page_report(evaluate_pages(data, model, device, limit, peers,
                                             precision=precision.value, decoder=decoder.value, lm_path=lm or None,
                                             lexicon=not no_lexicon))
            return
        report = evaluate_lines(data, model, device, limit, batch_size, precision.value, decoder.value, lm or None, not no_lexicon)
        print_line_report(report, verbose, by_confidence)
    except OcrError as exc:
        _err(f"error: {exc}")
        raise typer.Exit(int(exc.exit_code)) from None


@app.command()
def train(
    train_tsv: Annotated[list[Path], typer.Option("--train", help="Training TSV (repeatable).", show_default=False)],
    val_tsv: Annotated[Path, typer.Option("--val", help="Validation TSV.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoint, log.csv, best.safetensors. Rerun to resume.", show_default=False)],
    fonts: Annotated[Optional[Path], typer.Option("--fonts", help="Font folder with fonts.csv for synthetic English lines.")] = None,
    synth_fraction: Annotated[float, typer.Option("--synth-fraction", min=0.0, max=0.9, help="Share of synthetic lines in training.")] = 0.1,
    augment_prob: Annotated[float, typer.Option("--augment-prob", min=0.0, max=1.0, help="Share of real lines distorted each time they are drawn.")] = 0.6,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Total optimisation steps (the LR schedule spans them).")] = 10000,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 24,
    lr: Annotated[float, typer.Option("--lr")] = 1e-3,
    val_every: Annotated[int, typer.Option("--val-every", min=1)] = 500,
    val_limit: Annotated[int, typer.Option("--val-limit", min=1, help="Validation lines used (a fixed stratified subset).")] = 600,
    patience: Annotated[int, typer.Option("--patience", min=1, help="Stop after this many validations without improvement.")] = 8,
    max_minutes: Annotated[Optional[float], typer.Option("--max-minutes", help="Checkpoint and stop after this long (resume later).")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: Annotated[str, typer.Option("--device")] = "auto",
    init_from: Annotated[Optional[Path], typer.Option("--init-from", help="Start from this model file's weights (and its network shape).")] = None,
    hidden: Annotated[Optional[int], typer.Option("--hidden", min=16, help="LSTM units each way [default: 256, or the --init-from model's]. Above the --init-from model's, its LSTM is widened: new units start with zero outgoing weights, so training starts from the same readings.", show_default=False)] = None,
    precision: Annotated[Precision, typer.Option("--precision", help="fp32, bf16 (mixed precision, weights stay fp32) or auto: bf16 on GPUs and CPUs that compute it natively.")] = Precision.auto,
    average_from: Annotated[Optional[int], typer.Option("--average-from", min=0, help="From this step on, also validate the mean of the weights at every validation (stochastic weight averaging); best.safetensors is whichever reads best.")] = None,
    store_height: Annotated[Optional[int], typer.Option("--store-height", min=16, help="Keep real training lines this many px high in memory [default: the network's input height], so that augmented or trimmed lines are resampled once.", show_default=False)] = None,
    fit: Annotated[bool, typer.Option("--fit-rows/--whole-lines", help="Train on the rows the recognizer reads (fit_rows after augmentation), or on whole lines.")] = False,
    height: Annotated[int, typer.Option("--height", min=16, max=256, help="Input height in px of a new network (not with --init-from: its own).")] = 40,
    channels: Annotated[str, typer.Option("--channels", help="Convolution channels of a new network's 6 blocks, comma-separated (not with --init-from: its own).")] = "32,64,96,128,160,192",
    workers: Annotated[int, typer.Option("--workers", min=0, max=64, help="Threads that make batches (distort, trim, resample lines) ahead of the training steps: for a GPU, which one thread cannot keep busy. The same batches whatever the number; 0: the training thread makes them.")] = 0,
) -> None:
    """Train the CRNN recognizer (resumable: rerun the same command to continue).

    Example: ocr train --train ../shared/data/train.tsv --val ../shared/data/val.tsv --fonts ../shared/fonts --out runs/m1
    """
    try:
        device = _validate_device(device)
        from ocrcli.runtime import limit_memory

        limit_memory()  # before torch loads: training meets many batch widths too
        from ocrcli.recognition.engine import resolve_device
        from ocrcli.train.loop import TrainConfig, train as run_training

        try:
            widths = tuple(int(c) for c in channels.split(","))
        except ValueError:
            widths = ()
        if len(widths) != 6 or min(widths) < 1:
            raise UsageError(f"--channels {channels!r}: give 6 positive numbers, comma-separated")
        cfg = TrainConfig(train_tsvs=list(train_tsv), val_tsv=val_tsv, out_dir=out, fonts_dir=fonts, height=height, channels=widths, workers=workers,
                          synth_fraction=synth_fraction if fonts else 0.0, augment_prob=augment_prob, steps=steps, batch_size=batch_size, lr=lr,
                          val_every=val_every, val_limit=val_limit, patience=patience, max_minutes=max_minutes,
                          seed=seed, device=resolve_device(device), init_from=init_from, hidden=hidden, precision=precision.value,
                          average_from=average_from, store_height=store_height, fit_rows=fit)
        best = run_training(cfg)
        print(best)
    except OcrError as exc:
        _err(f"error: {exc}")
        raise typer.Exit(int(exc.exit_code)) from None


SYNTHETIC_LM_SEED = 424242  # not a seed of training (small integers) nor of scripts/synth_testset.py


@app.command("train-lm")
def train_lm(
    train_tsv: Annotated[list[Path], typer.Option("--train", help="TSV(s) whose transcriptions the model counts (repeatable).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Language model file to write (.json.gz).", show_default=False)],
    order: Annotated[int, typer.Option("--order", min=1, max=12, help="Characters of context plus one.")] = 7,
    min_count: Annotated[int, typer.Option("--min-count", min=1, help="Leave out contexts of 3+ characters seen fewer times (smaller, faster to load).")] = 2,
    smoothing: Annotated[Smoothing, typer.Option("--smoothing", help="kneser-ney (shorter contexts hold continuation counts) or absolute (plain counts at every order).")] = Smoothing.kneser_ney,
    discount: Annotated[float, typer.Option("--discount", min=0.05, max=0.95, help="Absolute discount subtracted from every count.")] = 0.8,
    synthetic_lines: Annotated[int, typer.Option("--synthetic-lines", min=0, help="Also count this many English lines from the synthetic training text generator (sentences, names, addresses, dates, amounts; fixed seed).")] = 0,
    wordnet_lines: Annotated[int, typer.Option("--wordnet-lines", min=0, help="Also count this many English phrases from WordNet's glosses (a fixed sample; needs Debian's wordnet-base or --wordnet-dir).")] = 0,
    wordnet_dir: Annotated[Path, typer.Option("--wordnet-dir", help="Folder of WordNet 3.0's data.noun, data.verb, data.adj, data.adv.")] = Path("/usr/share/wordnet"),
    sets: Annotated[Optional[list[str]], typer.Option("--set", help="Count only the --train lines of this set (third column; repeatable): a model of one language.", show_default=False)] = None,
    text: Annotated[Optional[list[Path]], typer.Option("--text", help="Also count plain prose: a UTF-8 .txt file, or a folder of them (repeatable); each paragraph is cut into line-sized pieces.", show_default=False)] = None,
    text_lines: Annotated[int, typer.Option("--text-lines", min=0, help="Count at most this many pieces of --text (a fixed sample; 0: all).")] = 0,
    lexicon: Annotated[Optional[list[Path]], typer.Option("--lexicon", help="Word list (UTF-8 text; its words, any layout) for the model's lexicon, with the words of every counted line (repeatable).", show_default=False)] = None,
    wordfreq_words: Annotated[int, typer.Option("--wordfreq-words", min=0, help="Add the N most frequent words of each --wordfreq-language to the lexicon (the wordfreq package, installed with '.[train]'; its data is CC BY-SA 4.0).")] = 0,
    wordfreq_language: Annotated[list[str], typer.Option("--wordfreq-language", help="Language of --wordfreq-words (repeatable).")] = ["en", "fr", "de"],
    tune_on: Annotated[Optional[Path], typer.Option("--tune-on", help="TSV of line images: pick the LM weight and character bonus that give the lowest CER there.")] = None,
    tune_limit: Annotated[int, typer.Option("--tune-limit", min=1, help="Lines of --tune-on used (a fixed stratified subset).")] = 600,
    weights_from: Annotated[Optional[Path], typer.Option("--weights-from", help="Take the LM weight, character bonus and lexicon charge of this language model file instead of tuning them: for a model searched beside it (readings are compared by score).", show_default=False)] = None,
    model: Annotated[Optional[Path], typer.Option("--model", help="Recognizer whose outputs --tune-on decodes (default: the shipped one).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Build the character n-gram language model of --decoder beam from line transcriptions.

    With --lexicon or --wordfreq-words the model also holds a lexicon: beam search then charges a
    penalty (tuned with the weights) for every word of a reading that is not in it.

    Example: ocr train-lm --train ../shared/data/train.tsv --synthetic-lines 5000 --wordnet-lines 10000 --wordfreq-words 150000 --tune-on ../shared/data/val.tsv --out models/ocrcli-charlm-v1.json.gz
    """
    try:
        device = _validate_device(device)
        if weights_from is not None and tune_on is not None:
            raise UsageError("--weights-from and --tune-on both set the weights: give one")
        from ocrcli.recognition.charset import DEFAULT_ALPHABET
        from ocrcli.recognition.lm import Lexicon, load_lm
        from ocrcli.train.charlm import (UNTUNED_OOV, build_charlm, text_pieces, tune_weights, wordfreq_words as top_words,
                                         wordnet_glosses)
        from ocrcli.train.data import read_tsv

        weights = load_lm(weights_from) if weights_from is not None else None  # before the counting: fail early

        texts = []
        for tsv in train_tsv:
            try:
                texts += [line for _, line, name in read_tsv(tsv) if not sets or name in sets]
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise UsageError(f"--train {tsv}: cannot read ({exc})") from None
        if sets and not texts:
            raise UsageError(f"--set {', '.join(sets)}: no --train line belongs to it")
        if synthetic_lines:
            from ocrcli.train.synth import TextSource

            source = TextSource(SYNTHETIC_LM_SEED)
            texts += [source.line() for _ in range(synthetic_lines)]
        if wordnet_lines:
            try:
                texts += wordnet_glosses(wordnet_dir, wordnet_lines)
            except OSError as exc:
                raise UsageError(f"--wordnet-dir {wordnet_dir}: cannot read WordNet's data files ({exc}); "
                                 "install them with 'apt-get install wordnet-base'") from None
        if text:
            try:
                texts += text_pieces(text, text_lines or None, DEFAULT_ALPHABET)
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"--text: cannot read ({exc})") from None
        started = time.perf_counter()
        lm = build_charlm(texts, order, discount, vocabulary=len(DEFAULT_ALPHABET) + 1, min_count=min_count, smoothing=smoothing.value,
                          info={"trained_on": [str(t) for t in train_tsv], "order": order, "min_count": min_count,
                                "synthetic_lines": synthetic_lines, "wordnet_lines": wordnet_lines, "sets": list(sets or []),
                                "text": [str(t) for t in text or []], "text_lines": text_lines})
        _err(f"counted {lm.info['lines']} lines in {time.perf_counter() - started:.1f} s: "
             f"{sum(len(level) for level in lm.counts)} contexts")
        if lexicon or wordfreq_words:
            sources = list(texts)
            for path in lexicon or []:
                try:
                    sources += path.read_text(encoding="utf-8").splitlines()
                except (OSError, UnicodeDecodeError) as exc:
                    raise UsageError(f"--lexicon {path}: cannot read ({exc})") from None
            if wordfreq_words:
                try:
                    sources += top_words(wordfreq_language, wordfreq_words)
                except ImportError:
                    raise UsageError("--wordfreq-words needs the wordfreq package: pip install -e '.[train]'") from None
                except LookupError as exc:
                    raise UsageError(f"--wordfreq-language: {exc}") from None
            lm.lexicon = Lexicon(sources, DEFAULT_ALPHABET)
            lm.oov = UNTUNED_OOV
            lm.info.update({"lexicon": [str(p) for p in lexicon or []], "wordfreq_words": wordfreq_words,
                            "wordfreq_languages": list(wordfreq_language) if wordfreq_words else []})
            _err(f"lexicon: {len(lm.lexicon)} words")
        if tune_on is not None:
            import cv2

            from ocrcli.recognition.engine import Recognizer
            from ocrcli.train.loop import stratified

            try:
                rows = stratified(read_tsv(tune_on), tune_limit, 0, group=lambda r: r[2])
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise UsageError(f"--tune-on {tune_on}: cannot read ({exc})") from None
            rows = [(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), text) for path, text, _ in rows]
            rows = [(image, text) for image, text in rows if image is not None]
            recognizer = Recognizer(model, device, decoder="greedy")
            log_probs = recognizer.log_probs([image for image, _ in rows])
            results = tune_weights(lm, log_probs, [text for _, text in rows], recognizer.charset.alphabet,
                                   threads=os.cpu_count() or 1)
            for cer, alpha, beta, oov in results[:5]:
                _err(f"  alpha {alpha:.1f} beta {beta:.1f} oov {oov:.1f}: CER {100 * cer:.2f}%")
            lm.info.update({"tuned_on": f"{tune_on} ({len(rows)} lines)", "tuned_for": recognizer.model_id,
                            "tuned_cer": round(results[0][0], 4)})
        if weights is not None:
            lm.alpha, lm.beta = weights.alpha, weights.beta
            if lm.lexicon is not None:
                lm.oov = weights.oov
            lm.info["weights_from"] = weights_from.name
        out.parent.mkdir(parents=True, exist_ok=True)
        lm.save(out)
        print(out)
    except OcrError as exc:
        _err(f"error: {exc}")
        raise typer.Exit(int(exc.exit_code)) from None


@app.command()
def adapt(
    paths: Annotated[list[str], typer.Argument(help="Page images or PDFs (files, folders, patterns) of one writer.", show_default=False)],
    out: Annotated[Path, typer.Option("--output", "-o", help="The adapted model file to write (.safetensors).", show_default=False)],
    text: Annotated[Optional[list[Path]], typer.Option("--text", help="Transcription of each input, in the inputs' sorted order (repeatable); default: the .txt beside each input (page.jpg + page.txt).")] = None,
    model: Annotated[Optional[Path], typer.Option("--model", help="Model to adapt (default: the shipped one).")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", min=1, help="Fine-tuning steps (default: about 30 passes over the aligned lines, 100-1500).")] = None,
    holdout: Annotated[float, typer.Option("--holdout", min=0.0, max=0.5, help="Share of the aligned lines kept aside to report the CER before and after.")] = 0.15,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate.")] = 1e-3,
    max_cer: Annotated[float, typer.Option("--max-cer", min=0.0, max=1.0, help="Alignment: drop lines whose reading is further than this (CER) from their text; a safety net, the cuts are decided by the model's CTC likelihood (a 58%-CER model still cut 100 of 100 peraire lines right).")] = 0.8,
    min_margin: Annotated[float, typer.Option("--min-margin", min=0.0, help="Alignment: drop lines whose cut is not this many nats likelier than the next best cut.")] = 8.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    dpi: Annotated[int, typer.Option("--dpi", help="Resolution for rendering PDF pages.", min=50, max=1200)] = 200,
    precision: Annotated[Precision, typer.Option("--precision", help="auto, bf16 or fp32 (as for train).")] = Precision.auto,
) -> None:
    """Adapt the model to one writer from a few pages and a plain-text transcription of each.

    The transcription's line breaks need not match the page: the text is aligned to the lines found on the page automatically, and lines that cannot be aligned with confidence are left out.

    Example: ocr adapt diary/*.jpg -o diary.safetensors   (with diary/p1.jpg + diary/p1.txt, ...)
             ocr recognize diary/ --model diary.safetensors
    """
    try:
        device = _validate_device(device)
        if out.exists() and out.is_dir():
            raise UsageError(f"--output {out}: is a folder; give a file name like writer.safetensors")
        if model is not None and not model.is_file():
            from ocrcli.errors import ModelError

            raise ModelError(f"{model}: model file not found")
        from ocrcli.inputs import resolve_inputs

        resolved = resolve_inputs(paths)
        for problem in resolved.problems:
            _err(problem)
        if not resolved.files:
            from ocrcli.errors import NoInputError

            raise NoInputError("no input files found", hint="give page images or PDFs with a .txt transcription beside each")
        if text is not None and len(text) != len(resolved.files):
            raise UsageError(f"{len(text)} --text files for {len(resolved.files)} inputs; give one per input, in sorted order")
        transcripts = text or [f.path.with_suffix(".txt") for f in resolved.files]
        pairs, failed = [], len(resolved.problems)
        for f, t in zip(resolved.files, transcripts):
            try:
                pairs.append((f, t.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else (exc.strerror or str(exc))
                _err(f"{f.display}: transcription {t}: {reason}")
                failed += 1
        if not pairs:
            from ocrcli.errors import NoInputError

            raise NoInputError("no page has a readable transcription", hint="put page.txt beside page.jpg, or use --text")
        from ocrcli.runtime import limit_memory, quiet_decoders

        limit_memory()
        quiet_decoders()
        from ocrcli.api import load_recognizer
        from ocrcli.config import RecognizeConfig, RunConfig
        from ocrcli.train.adapt import AdaptConfig, adapt_model

        cfg = RunConfig(dpi=dpi, recognize=RecognizeConfig(model_path=model, device=device, precision=precision.value))
        recognizer = load_recognizer(cfg)
        settings = AdaptConfig(steps=steps, lr=lr, holdout=holdout, seed=seed, precision=precision.value,
                               max_cer=max_cer, min_margin=min_margin)

        def page_error(message: str) -> None:
            nonlocal failed
            failed += 1
            _err(message)

        report = adapt_model(pairs, recognizer.model_path, out, cfg, recognizer, settings, page_error, _err)
        if report.cer_before is not None:
            _err(f"held-out lines ({report.holdout_lines}): CER {100 * report.cer_before:.2f}% before, "
                 f"{100 * report.cer_after:.2f}% after")
        _err(f"adapted on {report.train_lines} lines in {report.steps} steps, {report.seconds:.0f} s -> {out}")
        print(out)
        code = ExitCode.INPUT_FAILED if failed else ExitCode.OK
    except OcrError as exc:
        _err(f"error: {exc}")
        code = exc.exit_code
    raise typer.Exit(int(code))


@app.command()
def models(
    model: Annotated[Optional[list[Path]], typer.Option("--model", help="Also describe this model file (repeatable).")] = None,
) -> None:
    """List the installed models with their metadata: charset, input height, training data, validation CER.

    Example: ocr models
    """
    from ocrcli.recognition.engine import default_model_path
    from ocrcli.recognition.weights import file_sha256, read_metadata

    default = default_model_path()
    paths = sorted(default.parent.glob("*.safetensors")) if default.parent.is_dir() else []
    paths += [m for m in (model or []) if m not in paths]
    if not paths:
        _err(f"error: no model files in {default.parent}")
        raise typer.Exit(int(ExitCode.MODEL))
    code = ExitCode.OK
    for path in paths:
        try:
            meta = read_metadata(path)
        except OcrError as exc:
            _err(f"error: {exc}")
            code = ExitCode.MODEL
            continue
        info = meta.info
        cer = info.get("val_cer", info.get("val_subset_cer"))
        print(f"{path.name}{'  (default)' if path.resolve() == default.resolve() else ''}")
        print(f"  path: {path}")
        print(f"  sha256: {file_sha256(path)}")
        print(f"  input height: {meta.spec.get('height')} px; charset: {len(meta.alphabet)} characters; "
              f"normalisation: {meta.normalization}")
        print(f"  charset: {meta.alphabet}")
        print(f"  trained on: {', '.join(info.get('train_sets', [])) or ', '.join(info.get('train_data', [])) or '-'}")
        if isinstance(cer, (int, float)):
            print(f"  validation CER: {100 * cer:.2f}% ({info.get('val_cer_on', 'validation subset used in training')})")
        if isinstance(info.get("adapted_from"), dict):
            base, before, after = info["adapted_from"], info.get("adapt_holdout_cer_before"), info.get("adapt_holdout_cer_after")
            print(f"  adapted from {base.get('model')} on {info.get('adapt_pages')} pages, {info.get('adapt_lines')} lines"
                  + (f"; held-out lines CER {100 * before:.2f}% -> {100 * after:.2f}%" if before is not None and after is not None else ""))
    try:
        from ocrcli.recognition import _ctcbeam  # noqa: F401
        print("beam search: C (ocrcli.recognition._ctcbeam)")
    except ImportError:
        print("beam search: Python (the C extension was not built: reinstall with a C compiler for decoding about 10x faster)")
    from ocrcli.recognition.engine import default_lm_paths

    paths = default_lm_paths()
    print(f"language models of beam search ({'$OCRCLI_LM' if os.environ.get('OCRCLI_LM') else 'shipped'}; each line is read "
          "with each, the best-scoring reading kept):")
    for path in paths:
        print(f"  {path}" + ("" if path.is_file() else "  (missing)"))
    raise typer.Exit(int(code))


def run() -> None:
    """Console-script entry point: typer's usage errors exit 2, ours carry their own codes.

    Once torch is loaded, the interpreter's own teardown of its modules at exit takes about 0.4 s on
    2 cores, more than recognising a page: after the command, the process does what a normal exit
    does that matters (joins running threads, runs the exit handlers, flushes stdout and stderr)
    and ends without it. Outputs are complete by then (written to temporary files and renamed)."""
    try:
        app()
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    if "torch" not in sys.modules or not (code is None or isinstance(code, int)):
        raise SystemExit(code)
    _exit_without_teardown(code or 0)


def _exit_without_teardown(code: int) -> None:
    import atexit
    import os
    import threading

    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe, a closed stream: let the interpreter report it as usual
        raise SystemExit(code) from None
    os._exit(code)


if __name__ == "__main__":
    run()
