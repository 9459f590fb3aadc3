"""textclf: train, compare, diagnose and serve neural text classifiers."""

import importlib

__version__ = "0.1.0"

# Public names -> the module defining them. Imported on first use (PEP 562), so `import textclf`
# and torch-free parts (the ONNX runtime, the CLI's startup) never pay for importing PyTorch.
_PUBLIC = {
    "Dataset": "textclf.data.readers",
    "LinearModel": "textclf.linear.model",
    "Model": "textclf.inference.model",
    "OnnxModel": "textclf.inference.onnx",
    "Predictor": "textclf.inference.predictor",
    "TextClassifier": "textclf.estimator",
    "evaluate": "textclf.training.run",
    "load_model": "textclf.inference.loading",
    "train": "textclf.training.run",
}

__all__ = ["Dataset", "LinearModel", "Model", "OnnxModel", "Predictor", "TextClassifier", "__version__", "evaluate",
           "load_model", "train"]


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'textclf' has no attribute {name!r}")
