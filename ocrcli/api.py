"""The public Python API. The CLI is built on it; so is the distributed engine.

    import ocrcli

    for outcome in ocrcli.recognize(["scans/"], ocrcli.RunConfig(formats=("json",), output_dir=Path("out"))):
        print(outcome.input.display, outcome.error or outcome.result.text)

    rec = ocrcli.Recognizer()                       # loads the model once
    rec.recognize([line_image])[0].text             # uint8 grayscale crops of text lines
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ocrcli.config import RunConfig
from ocrcli.errors import NoInputError
from ocrcli.inputs import InputFile, Resolved, resolve_inputs, select_shard
from ocrcli.pipeline import FileOutcome


def find_inputs(paths: Iterable[str | Path], literal: Iterable[str | Path] = (),
                shard: tuple[int, int] | None = None) -> Resolved:
    """Files, folders and glob patterns -> the sorted, de-duplicated input files (and one problem
    line per argument that named nothing usable). ``shard=(i, n)`` keeps shard i of n."""
    resolved = resolve_inputs([str(p) for p in paths], [str(p) for p in literal])
    if shard is not None:
        resolved = Resolved(select_shard(resolved.files, *shard), resolved.problems)
    return resolved


def recognize(inputs: Iterable[str | Path] | Iterable[InputFile], config: RunConfig | None = None, *,
              recognizer=None, emit: Callable[[str], None] | None = None) -> Iterator[FileOutcome]:
    """Transcribe files one by one, yielding a ``FileOutcome`` per file, in sorted input order.

    ``inputs`` are paths, folders or patterns (as on the command line) or ``InputFile``s from
    ``find_inputs``. Outputs are written as ``config`` says (default: ``RunConfig()``, a .txt beside
    each input); with ``config.to_stdout`` the rendered text goes to ``emit`` instead. A file that
    cannot be read gives an outcome with ``error`` set and the batch goes on; arguments that name
    nothing usable come first, as outcomes with ``input=None``. ``recognizer``: a loaded
    ``Recognizer`` to reuse (default: one for ``config.recognize``). Raises ``NoInputError`` when
    nothing is found, ``ModelError``/``DeviceError`` for problems that concern the whole batch.
    """
    from ocrcli.output import RunInfo
    from ocrcli.pipeline import run_batch

    cfg = config or RunConfig()
    items = list(inputs)
    if all(isinstance(i, InputFile) for i in items):
        files, problems = list(items), []
    else:
        resolved = find_inputs(items)
        files, problems = resolved.files, resolved.problems
    for problem in problems:
        yield FileOutcome(None, error=problem)
    if not files:
        raise NoInputError("no input files found", hint="give JPEG, PNG, BMP, TIFF or PDF files, folders or patterns")
    if recognizer is None:
        recognizer = load_recognizer(cfg)
    yield from run_batch(files, cfg, recognizer, RunInfo(recognizer.model_id, recognizer.sha256, recognizer.device), emit)


def load_recognizer(cfg: RunConfig | None = None):
    """A ``Recognizer`` for ``cfg.recognize`` (model file, device, batch size, precision)."""
    from ocrcli.recognition.engine import Recognizer

    rc = (cfg or RunConfig()).recognize
    return Recognizer(rc.model_path, rc.device, rc.batch_size, rc.precision, rc.decoder, rc.lm_path, rc.lexicon)
