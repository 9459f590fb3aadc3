"""Using trained models: the Predictor interface, the PyTorch and ONNX models, loading, export and
prediction over files."""
