"""textclf's exceptions. One message shape everywhere: what, where: expected X, got Y. Hint.

`exit_code` is what the CLI exits with: 2 for usage/data errors, 1 for runtime failures.
"""

from __future__ import annotations


class TextClfError(Exception):
    """Base class of every error textclf raises on purpose."""

    exit_code = 1


class ConfigError(TextClfError, ValueError):
    """A configuration value or command-line option that cannot work."""

    exit_code = 2


class DataError(TextClfError, ValueError):
    """Input data that cannot be read or used as it is."""

    exit_code = 2


class ModelFormatError(TextClfError, ValueError):
    """A model folder (or file) that is missing parts, tampered with, or from a newer textclf."""

    exit_code = 2


class NotFittedError(TextClfError, AttributeError):
    """A model used before it was fitted (scikit-learn's convention)."""

    exit_code = 2


class TrainingError(TextClfError, RuntimeError):
    """Training failed at run time (non-finite loss, out of memory, ...)."""

    exit_code = 1


class RankFailed(TrainingError):
    """A rank of a distributed run failed; the exit code is the rank's own (2 for a usage/data error)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class TextClfWarning(UserWarning):
    """A warning about data or settings that still allow the run to go on (tests turn it into an error)."""


class DoctorWarning(UserWarning):
    """A finding of the doctor's training monitors (warning or error severity), raised by textclf.train
    so that Python users see it; the CLI prints findings itself."""
