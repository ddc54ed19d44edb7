"""The ranking model's inputs held in memory: a split read once, only the features the model
reads, integers in their smallest dtype, and batches reshuffled every epoch.

Parsing gzipped tf.Examples costs more than a training step: on ML-1M (2 cores, batch 2048) the
Trainer spent ~120 ms per step streaming the Transform output and ~40 ms per step on batches in
memory. So the Trainer reads each split once (read_into_memory) and trains on make_dataset;
the in-process evaluation (pipeline/evaluation.py) uses the same batching.
"""
from typing import Dict, Iterable, Optional

import numpy as np
import tensorflow as tf


def compact_ints(a: np.ndarray) -> np.ndarray:
    """An integer array in the smallest signed dtype that holds its values (int8 .. int64);
    other arrays unchanged. tf.Example integers are int64, but SID codes, SentencePiece pieces,
    catalog rows, labels and masks are small: ML-1M's history_spm_<B> ([644k, 50, 5]) is 1.3 GB
    as int64 and 0.3 GB as int16. make_dataset casts back to int64 per batch."""
    if a.dtype.kind != "i" or a.size == 0:
        return a
    lo, hi = int(a.min()), int(a.max())
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return a.astype(dtype)
    return a


def as_model_input(t: tf.Tensor) -> tf.Tensor:
    """A compact integer tensor (compact_ints) back in tf.Example's int64, as the model reads it."""
    return tf.cast(t, tf.int64) if t.dtype.is_integer and t.dtype != tf.int64 else t


def content_order(arrays: Dict[str, np.ndarray]) -> np.ndarray:
    """Row indices that sort `arrays`' rows (row-aligned) by a 64-bit hash of their values,
    features in name order: the same rows in any order give the same sequence of rows. The
    Transform output's row order depends on how Beam ran (workers, bundles), so without this
    two runs on the same rows shuffle them differently and train different models."""
    n = len(next(iter(arrays.values())))
    digest = np.zeros(n, np.uint64)
    with np.errstate(over="ignore"):
        for name in sorted(arrays):
            columns = arrays[name].reshape(n, -1)
            for j in range(columns.shape[1]):  # a column at a time: no wide int64 copy
                column = columns[:, j]
                bits = (column.astype(np.float64).view(np.uint64) if column.dtype.kind == "f"
                        else column.astype(np.int64).view(np.uint64))
                digest = (digest ^ bits) * np.uint64(0x100000001B3)  # FNV-1a step
                digest ^= digest >> np.uint64(31)
    return np.argsort(digest, kind="stable")


def make_dataset(arrays: Dict[str, np.ndarray], batch_size: int, shuffle_seed: Optional[int] = None):
    """Batches of `arrays` (row-aligned): reshuffled every epoch with `shuffle_seed`, or in order.
    Shuffles row indices and gathers whole batches (cheaper than shuffling row structures);
    integers reach the model as int64 whatever dtype they are held in (compact_ints). The
    shuffle starts from the rows in content_order, so a seed gives the same batches whatever
    order the rows were written in."""
    n = len(next(iter(arrays.values())))
    tensors = {k: tf.constant(v) for k, v in arrays.items()}
    if shuffle_seed is not None:
        ds = tf.data.Dataset.from_tensor_slices(content_order(arrays).astype(np.int64))
        ds = ds.shuffle(n, seed=int(shuffle_seed), reshuffle_each_iteration=True)
    else:
        ds = tf.data.Dataset.range(n)

    def gather(idx):  # a named function: AutoGraph cannot read a lambda's source here
        return {k: as_model_input(tf.gather(t, idx)) for k, t in tensors.items()}

    ds = ds.batch(batch_size).map(gather)
    return ds.prefetch(tf.data.AUTOTUNE)


def read_into_memory(batches: Iterable[Dict[str, tf.Tensor]],
                     max_bytes: int) -> Optional[Dict[str, np.ndarray]]:
    """Every batch of a dense feature dataset, concatenated feature by feature (compact_ints), or
    None as soon as what is held passes `max_bytes` (then stream the split instead)."""
    parts: Dict[str, list] = {}
    held = 0
    for batch in batches:
        for name, tensor in batch.items():
            if isinstance(tensor, (tf.SparseTensor, tf.RaggedTensor)):
                raise ValueError(f"read_into_memory: feature {name!r} is not dense; the "
                                 "Transform output's features must have fixed shapes")
            array = compact_ints(tensor.numpy())
            held += array.nbytes
            parts.setdefault(name, []).append(array)
        if held > max_bytes:
            return None
    if not parts:  # an empty split: nothing to hold
        return None
    # Batches held in different dtypes concatenate to the widest.
    return {name: np.concatenate(arrays) for name, arrays in parts.items()}
