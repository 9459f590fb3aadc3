import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from textclf.data.batching import bucket_batches, collate
from textclf.data.tokenize import PAD_ID


@given(st.lists(st.integers(0, 300), min_size=1, max_size=400), st.integers(1, 64), st.integers(0, 10))
@settings(max_examples=50, deadline=None)
def test_bucketing_covers_every_index_once(lengths, batch_size, seed):
    batches = bucket_batches(lengths, batch_size, rng=np.random.default_rng(seed), chunk_batches=4)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert all(1 <= len(b) <= batch_size for b in batches)


def test_bucketing_keeps_padding_small():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 500, size=5000)
    batches = bucket_batches(lengths, 32, rng=np.random.default_rng(1))
    padded = sum(len(b) * lengths[b].max() for b in batches)
    assert padded / lengths.sum() < 1.1
    random_batches = np.array_split(rng.permutation(5000), 5000 // 32)
    assert padded < sum(len(b) * lengths[b].max() for b in random_batches) * 0.7


def test_bucketing_is_seeded_and_shuffles():
    lengths = np.arange(1000) % 37
    a = bucket_batches(lengths, 16, rng=np.random.default_rng(5))
    b = bucket_batches(lengths, 16, rng=np.random.default_rng(5))
    c = bucket_batches(lengths, 16, rng=np.random.default_rng(6))
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert any(len(x) != len(y) or (x != y).any() for x, y in zip(a, c, strict=False))


def test_evaluation_batches_are_sorted():
    batches = bucket_batches([5, 1, 3, 2], 2)
    assert [b.tolist() for b in batches] == [[1, 3], [2, 0]]


def test_collate_shapes_mask_and_padding():
    ids = [np.array([5, 6, 7]), np.array([8]), np.array([], dtype=np.int64)]
    batch = collate(ids, np.array([0, 1, 2]), np.array([1, 0, 2]))
    assert batch.ids.shape == (3, 3)
    assert batch.lengths.tolist() == [3, 1, 0]
    assert batch.mask.tolist() == [[True, True, True], [True, False, False], [False, False, False]]
    assert batch.ids[1, 1:].tolist() == [PAD_ID, PAD_ID]
    assert batch.labels.tolist() == [1, 0, 2]


def test_collate_min_length_and_all_empty():
    batch = collate([np.array([], dtype=np.int64)], np.array([0]), min_length=4)
    assert batch.ids.shape == (1, 4) and not batch.mask.any()
