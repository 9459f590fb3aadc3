"""Make the model folders of tests/test_legacy_folders.py with the textclf of the commit that
wrote them (they pin that folders saved then keep loading and predicting identically).

    python tests/resources/legacy/make_legacy.py   # run once; the folders are checked in
"""

import json
from pathlib import Path

import numpy as np

import textclf

HERE = Path(__file__).parent
TEXTS = ["I finally passed my driving test", "Someone stole my bike", "", "<br />the the the",
         "My friend lied to me and I felt so ashamed", "naïve café — ünïcode ✓", "a " * 300]
SMALL = {"max_vocab": 300, "embedding_dim": 16, "epochs": 2}
MODELS = {
    "cnn": {**SMALL, "num_filters": 8, "kernel_sizes": [2, 3]},
    "bilstm": {**SMALL, "rnn_dim": 8},
    "fasttext": {**SMALL, "bigram_buckets": 64},
    "transformer": {**SMALL, "model_dim": 16, "num_heads": 2, "ff_dim": 32, "num_layers": 1},
    "cnn-gru": {**SMALL, "num_filters": 8, "rnn_dim": 8},
    "tfidf-lr": {"min_df": 3},
    "nbsvm": {"min_df": 3},
    "tfidf-svm": {"min_df": 3},
    "majority": {},
}

if __name__ == "__main__":
    expected = {"texts": TEXTS, "models": {}}
    for name, settings in MODELS.items():
        model = textclf.train("example:emotions", architecture=name, seed=0, linear_baseline=False, **settings)
        out = HERE / name
        model.save(out)
        for extra in ("curves.png", "confusion.png", "metrics.json"):
            (out / extra).unlink(missing_ok=True)
        logits = np.asarray(textclf.load_model(out).logits(TEXTS), dtype=np.float64)
        expected["models"][name] = {"logits": logits.tolist(), "predict": textclf.load_model(out).predict(TEXTS)}
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
