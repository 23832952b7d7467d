"""Exit codes and the exceptions that carry them; the CLI maps them at one boundary."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, documented in the README."""

    OK = 0
    INPUT_FAILED = 1  # some inputs could not be read or recognised; the others were processed
    USAGE = 2  # bad options or arguments
    NO_INPUT = 3  # no path matched any supported input file
    MODEL = 4  # model file missing, damaged or incompatible
    DEVICE = 5  # the requested device (e.g. cuda) is not available, or the Ray cluster could not be used
    OUTPUT = 6  # an output could not be written (permissions, disk full)
    INTERRUPTED = 130  # Ctrl-C (SIGINT); SIGTERM gives 143


class OcrError(Exception):
    """An error with an exit code and an optional hint telling the user what to do."""

    exit_code: ExitCode = ExitCode.INPUT_FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} ({self.hint})" if self.hint else base


class UsageError(OcrError):
    exit_code = ExitCode.USAGE


class NoInputError(OcrError):
    exit_code = ExitCode.NO_INPUT


class ModelError(OcrError):
    exit_code = ExitCode.MODEL


class DeviceError(OcrError):
    exit_code = ExitCode.DEVICE


class InputError(OcrError):
    """One input file could not be read; the batch goes on."""

    exit_code = ExitCode.INPUT_FAILED


class OutputError(OcrError):
    exit_code = ExitCode.OUTPUT
