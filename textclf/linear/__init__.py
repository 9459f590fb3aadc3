"""The linear family: word n-gram features (scikit-learn's vectorizers over textclf's tokenizer) and
linear models (scikit-learn's estimators), saved as JSON and safetensors."""
