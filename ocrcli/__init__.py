"""ocrcli: offline handwriting OCR for folders of scanned or photographed pages.

The public API (``recognize``, ``find_inputs``, ``Recognizer``, the config classes) is imported on
first use, so ``import ocrcli`` and ``ocr --help`` do not pay for torch and OpenCV.
"""

__version__ = "0.1.0"

_API = {
    "recognize": "ocrcli.api",
    "find_inputs": "ocrcli.api",
    "load_recognizer": "ocrcli.api",
    "Recognizer": "ocrcli.recognition.engine",
    "RunConfig": "ocrcli.config",
    "PreprocessConfig": "ocrcli.config",
    "RecognizeConfig": "ocrcli.config",
    "FileOutcome": "ocrcli.pipeline",
    "RayOptions": "ocrcli.distributed",
    "run_on_ray": "ocrcli.distributed",
}
__all__ = ["FileOutcome", "PreprocessConfig", "RayOptions", "RecognizeConfig", "Recognizer", "RunConfig",
           "__version__", "find_inputs", "load_recognizer", "recognize", "run_on_ray"]


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'ocrcli' has no attribute {name!r}")
