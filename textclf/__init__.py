"""textclf: train, compare, diagnose and serve neural text classifiers."""

__version__ = "0.1.0"

from textclf.io import load_model  # noqa: E402
from textclf.model import Model  # noqa: E402
from textclf.training.run import evaluate, train  # noqa: E402

__all__ = ["Model", "__version__", "evaluate", "load_model", "train"]
