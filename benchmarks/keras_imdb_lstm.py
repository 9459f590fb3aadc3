"""The hand-written tf.keras IMDb LSTM, timed per epoch; run by bench_imdb_lstm.py in an environment
that has TensorFlow (never a textclf dependency):

    python benchmarks/keras_imdb_lstm.py ARRAYS.npz RESULT.json [--epochs 2] [--batch-size 32] [--threads 2]

ARRAYS.npz holds the token ids textclf's imdb-lstm preset trains on (`train_ids`, `train_labels`,
`test_ids`, `test_labels`; vocabulary 4,000, cut at 400 tokens, 0 = padding), so both frameworks
see exactly the same inputs. The model is the usual Keras code: pad_sequences to 400, Embedding(V, 128)
-> LSTM(128, dropout=0.2) -> Dense(C, softmax), Adam, sparse categorical cross-entropy, no masking.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("arrays")
    parser.add_argument("result")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    tf.keras.utils.set_random_seed(0)
    data = np.load(args.arrays, allow_pickle=False)
    maxlen = int(data["max_length"])
    vocab = int(data["vocab_size"])
    classes = int(data["num_labels"])

    def padded(flat: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        rows = [flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
        return tf.keras.utils.pad_sequences(rows, maxlen=maxlen, padding="pre", truncating="post")

    x_train = padded(data["train_ids"], data["train_offsets"])
    x_test = padded(data["test_ids"], data["test_offsets"])
    y_train, y_test = data["train_labels"], data["test_labels"]

    model = tf.keras.Sequential([
        tf.keras.Input(shape=(maxlen,), dtype="int32"),
        tf.keras.layers.Embedding(vocab, 128),
        tf.keras.layers.LSTM(128, dropout=0.2),
        tf.keras.layers.Dense(classes, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    class EpochTimer(tf.keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None) -> None:
            self.seconds.append(time.perf_counter() - self.start)
            print(f"keras epoch {epoch + 1}: {self.seconds[-1]:.1f} s", flush=True)

    timer = EpochTimer()
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, callbacks=[timer], verbose=0,
              shuffle=True)
    _, accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    result = {"framework": f"tensorflow {tf.__version__}", "batch_size": args.batch_size, "epochs": args.epochs,
              "threads": args.threads, "epoch_seconds": timer.seconds, "test_accuracy": float(accuracy),
              "n_train": int(len(y_train)), "n_test": int(len(y_test))}
    with open(args.result, "w") as handle:
        json.dump(result, handle, indent=2)
    print(f"keras: {args.epochs} epochs, test accuracy {accuracy:.4f}", flush=True)


if __name__ == "__main__":
    main()
