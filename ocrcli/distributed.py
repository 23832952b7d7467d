"""Run a batch on Ray Data: a pool of actors that each keep the model loaded, scheduled by Ray.

Why Ray Data (and not Dask): the work is batch inference with a model that is expensive to load and
cheap to call. Ray Data's callable-class ``map_batches`` keeps one model per actor for the whole run,
places actors on GPUs by fractional ``num_gpus``, streams inputs through the pool with backpressure
(a million-page run never holds more than a few files in flight), and restarts actors and retries
their tasks when a worker process or node dies. Dask can do this with ``Client.map`` plus per-worker
state and resource annotations, but we would be writing the actor pool ourselves.

Semantics match a local run: the driver resolves and orders the inputs and decides every output
path (so two inputs never write the same file), skips inputs whose outputs exist, and reports
outcomes in input order; the workers read inputs, recognise them and write the outputs atomically
(to a path every worker can reach: a shared filesystem on a real cluster). A file that fails, fails
alone; a model or device problem in a worker stops the batch with the same error as locally.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from ocrcli.config import RunConfig
from ocrcli.errors import DeviceError, ModelError, OcrError
from ocrcli.inputs import InputFile
from ocrcli.pipeline import FileOutcome, output_paths


@dataclass(frozen=True)
class RayOptions:
    """How to reach Ray and how big the actor pool is."""

    address: str | None = None  # None: $RAY_ADDRESS, else start a local Ray; "auto": the running cluster; "ray://host:10001"
    workers: int | None = None  # actors; None: as many as the cluster's CPUs (or GPUs) allow
    cpus_per_worker: float = 1.0  # also the worker's torch threads
    gpus_per_worker: float = 0.0  # e.g. 0.25: four actors share one GPU


class OcrWorker:
    """A Ray Data actor: loads the model once, then transcribes one input file per call."""

    def __init__(self, cfg: RunConfig, model_name: str, model_ref: list, threads: int) -> None:
        from ocrcli.runtime import limit_memory, quiet_decoders

        limit_memory()
        quiet_decoders()
        import torch

        torch.set_num_threads(max(1, threads))
        self.fatal: OcrError | None = None
        # The model travels with the job (the Ray object store), so nodes need no copy of it on disk.
        self._tmp = tempfile.TemporaryDirectory(prefix="ocrcli-model-")
        model_path = Path(self._tmp.name) / model_name
        import ray

        # A list keeps the reference from being resolved as an actor argument: Ray warns that actors
        # restarted after a failure may lose arguments held in the object store.
        model_path.write_bytes(ray.get(model_ref[0]))
        lm_path = None
        if len(model_ref) > 1:  # the language models of beam search travel the same way
            lm_path = tuple(Path(self._tmp.name) / f"charlm-{i}.json.gz" for i in range(len(model_ref) - 1))
            for path, ref in zip(lm_path, model_ref[1:]):
                path.write_bytes(ray.get(ref))
        self.cfg = replace(cfg, recognize=replace(cfg.recognize, model_path=model_path, lm_path=lm_path))
        try:
            from ocrcli.output import RunInfo
            from ocrcli.recognition.engine import Recognizer

            rc = self.cfg.recognize
            self.recognizer = Recognizer(rc.model_path, rc.device, rc.batch_size, rc.precision, rc.decoder, rc.lm_path, rc.lexicon)
            self.run_info = RunInfo(self.recognizer.model_id, self.recognizer.sha256, self.recognizer.device)
        except OcrError as exc:  # reported by the driver as the batch's error, with its exit code
            self.fatal = exc

    def __call__(self, batch: dict) -> dict:
        from ocrcli.pipeline import process_file

        out = []
        for blob in batch["task"]:
            f, paths = pickle.loads(blob)
            if self.fatal is not None:
                out.append(pickle.dumps(("fatal", self.fatal)))
                continue
            printed: list[str] = []
            try:
                outcome = process_file(f, paths, self.cfg, self.recognizer, self.run_info, printed.append)
            except OcrError as exc:
                out.append(pickle.dumps(("fatal", exc)))
                continue
            if outcome.result is not None:  # page images (kept for PDF output) are not needed any more
                pages = [replace(p, image=None) for p in outcome.result.pages]
                outcome.result = replace(outcome.result, pages=pages)
            out.append(pickle.dumps(("ok", (outcome, printed, self.recognizer.device))))
        return {"outcome": out}


def _start_ray(options: RayOptions, quiet: bool) -> bool:
    """Connect to (or start) Ray; True when this call started it and so must shut it down."""
    import ray

    if ray.is_initialized():
        return False
    address = options.address or os.environ.get("RAY_ADDRESS") or None
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.ERROR,
                 log_to_driver=False, configure_logging=True)
        logging.getLogger("ray.data").setLevel(logging.WARNING if not quiet else logging.ERROR)
    except Exception as exc:  # noqa: BLE001 - ray raises ConnectionError, RuntimeError, ValueError...
        where = address or "a local Ray instance"
        raise DeviceError(f"ray: cannot start or reach {where} ({' '.join(str(exc).split())[:200]})",
                          hint="check --address, or start the cluster with 'ray start --head'") from None
    return True


def _pool_size(options: RayOptions) -> int:
    import ray

    if options.workers:
        return options.workers
    resources = ray.cluster_resources()
    by_cpu = int(resources.get("CPU", 1) // max(options.cpus_per_worker, 1e-6))
    if options.gpus_per_worker > 0:
        by_gpu = int(resources.get("GPU", 0) // options.gpus_per_worker)
        if by_gpu < 1:
            raise DeviceError("ray: --gpus-per-worker given but the cluster has no GPU")
        return max(1, min(by_cpu, by_gpu))
    return max(1, by_cpu)


def run_on_ray(files: list[InputFile], cfg: RunConfig, options: RayOptions, model_path: Path,
               emit: Callable[[str], None] | None = None, quiet: bool = True,
               on_device: Callable[[str], None] | None = None) -> Iterator[FileOutcome]:
    """Like ``pipeline.run_batch``, on a Ray cluster: yields one outcome per input, in input order."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise DeviceError("--engine ray needs Ray Data", hint="pip install 'ocrcli[ray]'") from None
    try:
        model_bytes = model_path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{model_path}: cannot read model ({exc.strerror or exc})") from None
    shipped = [model_bytes]
    if cfg.recognize.decoder == "beam":  # the language models travel the same way (workers check them)
        from ocrcli.recognition.engine import lm_paths

        for lm_path in lm_paths(cfg.recognize.lm_path):
            try:
                shipped.append(lm_path.read_bytes())
            except OSError as exc:
                raise ModelError(f"{lm_path}: cannot read language model ({exc.strerror or exc})") from None
    targets = output_paths(files, cfg)
    todo = [f for f in files if cfg.to_stdout or cfg.overwrite or not all(p.exists() for p in targets[f.path].values())]
    if not todo:  # nothing to schedule: don't start a cluster to skip files
        for f in files:
            yield FileOutcome(f, skipped=True)
        return
    started = _start_ray(options, quiet)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # outcomes (and --stdout) in input order
        ctx.enable_progress_bars = not quiet
        workers = _pool_size(options)
        ds = ray.data.from_items([{"task": pickle.dumps((f, targets[f.path]))} for f in todo],
                                 override_num_blocks=min(len(todo), 4 * workers))
        ds = ds.map_batches(
            OcrWorker, batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=options.cpus_per_worker, num_gpus=options.gpus_per_worker or None,
            fn_constructor_kwargs={"cfg": cfg, "model_name": model_path.name, "model_ref": [ray.put(b) for b in shipped],
                                   "threads": max(1, int(options.cpus_per_worker))},
        )
        results = iter(ds.iter_rows())
        pending = {f.path for f in todo}
        for f in files:
            if f.path not in pending:
                yield FileOutcome(f, skipped=True)
                continue
            status, payload = pickle.loads(next(results)["outcome"])
            if status == "fatal":
                raise payload
            outcome, printed, device = payload
            if on_device:
                on_device(device)
            for text in printed:
                emit(text)
            yield outcome
        for _ in results:  # let Ray Data finish its bookkeeping before the cluster goes away
            pass
    except OcrError:
        raise
    except Exception as exc:  # noqa: BLE001 - actor or cluster failures after Ray's own retries
        raise DeviceError(f"ray: the batch failed ({type(exc).__name__}: {' '.join(str(exc).split())[:300]})",
                          hint="outputs written so far are complete; run the same command again to finish the rest") from None
    finally:
        if started:
            ray.shutdown()
