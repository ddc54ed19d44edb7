"""TFX Trainer module file for the RQ-VAE (Trainer(module_file=..., examples=<item embeddings>)).

Reads the embeddings Examples (`item_id` bytes, `embedding` float list of length E) of
fn_args.train_files, trains an RqVae on them (models/rqvae/train.py), writes
<model_run_dir>/training_summary.json and exports the SavedModel to fn_args.serving_model_dir
(models/rqvae/export.py: signatures serving_default and encode).

There is no Transform and no schema artifact upstream, so the schema is built here (embedding
FLOAT of fixed shape [E], item_id BYTES); E comes from custom_config `embedding_dim` or from the
first record. Without a data_accessor (tests, ad-hoc runs) the TFRecords are read with tf.data.
custom_config: see models/rqvae/config.py (RunConfig rqvae_* fields without the prefix, + seed).
A catalog above max_train_items trains on a seeded sample of that many items (`load_sample`);
SemanticIdGen still encodes every item. training_summary.json: num_items (trained on),
catalog_items, sampled, epochs run, stopped_early, the losses per epoch and the SID statistics
of the trained-on items.
"""
import hashlib
import json
import logging
import os
from typing import List, Optional, Sequence

import numpy as np
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.public import tfxio

from models.rqvae import export as export_lib
from models.rqvae import train as train_lib
from models.rqvae.config import RqVaeConfig
from schemas import features

SUMMARY_FILE = "training_summary.json"
_READ_BATCH = 1024


def _files(patterns: Sequence[str]) -> List[str]:
    if isinstance(patterns, str):
        patterns = [patterns]
    files = sorted(f for p in patterns for f in tf.io.gfile.glob(p))
    if not files:
        raise ValueError(f"RQ-VAE Trainer: no input files match {list(patterns)}")
    return files


def _compression(path: str) -> str:
    with tf.io.gfile.GFile(path, "rb") as f:
        return "GZIP" if f.read(2) == b"\x1f\x8b" else ""


def _record_dataset(files: Sequence[str]) -> tf.data.Dataset:
    return tf.data.TFRecordDataset(list(files), compression_type=_compression(files[0]))


def peek_embedding_dim(file_patterns: Sequence[str]) -> int:
    """Length of the `embedding` float list of the first record."""
    files = _files(file_patterns)
    for record in _record_dataset(files).take(1):
        example = tf.train.Example.FromString(record.numpy())
        return len(example.features.feature[features.ITEM_EMBEDDING].float_list.value)
    raise ValueError(f"RQ-VAE Trainer: no records in {files}")


def embeddings_schema(embedding_dim: int) -> schema_pb2.Schema:
    schema = schema_pb2.Schema()
    emb = schema.feature.add(name=features.ITEM_EMBEDDING, type=schema_pb2.FLOAT)
    emb.shape.dim.add(size=int(embedding_dim))
    emb.presence.min_fraction = 1.0
    item = schema.feature.add(name=features.ITEM_ID, type=schema_pb2.BYTES)
    item.shape.dim.add(size=1)
    item.presence.min_fraction = 1.0
    return schema


def _read_batches(file_patterns: Sequence[str], embedding_dim: int, data_accessor,
                  with_embeddings: bool):
    """(item_id [B] bytes, embedding [B, E] float32 or None) per read batch."""
    schema = embeddings_schema(embedding_dim)
    if not with_embeddings:  # ids only: the embeddings are not even parsed
        keep = [f for f in schema.feature if f.name == features.ITEM_ID]
        del schema.feature[:]
        schema.feature.extend(keep)
    if data_accessor is not None:
        ds = data_accessor.tf_dataset_factory(
            list(file_patterns),
            tfxio.TensorFlowDatasetOptions(batch_size=_READ_BATCH, num_epochs=1, shuffle=False),
            schema)
    else:
        spec = {features.ITEM_ID: tf.io.FixedLenFeature([1], tf.string)}
        if with_embeddings:
            spec[features.ITEM_EMBEDDING] = tf.io.FixedLenFeature([embedding_dim], tf.float32)
        ds = (_record_dataset(_files(file_patterns)).batch(_READ_BATCH)
              .map(lambda r: tf.io.parse_example(r, spec)))
    for batch in ds:
        ids = np.asarray(batch[features.ITEM_ID]).reshape(-1)
        emb = (np.asarray(batch[features.ITEM_EMBEDDING], np.float32).reshape(-1, embedding_dim)
               if with_embeddings else None)
        yield ids, emb


def load_embeddings(file_patterns: Sequence[str], embedding_dim: int, data_accessor=None):
    """(item_ids [N] bytes, embeddings float32 [N, E]) of every record, sorted by item id, so
    that training depends on the seed only, not on file or reader order.

    Two passes: the ids first, then every batch's embeddings go straight to their sorted rows of
    one preallocated matrix, so the catalog is in memory once (1M x 384 floats = 1.5 GB), not as
    batches + their concatenation + a sorted copy."""
    id_batches = [ids for ids, _ in _read_batches(file_patterns, embedding_dim, data_accessor,
                                                  with_embeddings=False)]
    if not id_batches:
        raise ValueError(f"RQ-VAE Trainer: no embeddings in {list(file_patterns)}")
    item_ids = np.sort(np.concatenate(id_batches), kind="stable")
    row_of = {item_id: row for row, item_id in enumerate(item_ids.tolist())}
    if len(row_of) != len(item_ids):
        raise ValueError(f"RQ-VAE Trainer: {len(item_ids) - len(row_of)} repeated item ids in "
                         f"{list(file_patterns)}")
    matrix = np.empty((len(item_ids), embedding_dim), np.float32)
    filled = np.zeros(len(item_ids), dtype=bool)
    for ids, emb in _read_batches(file_patterns, embedding_dim, data_accessor,
                                  with_embeddings=True):
        rows = np.fromiter((row_of.get(i, -1) for i in ids.tolist()), np.int64, len(ids))
        if (rows < 0).any() or filled[rows].any():
            raise ValueError("RQ-VAE Trainer: the embeddings changed between the two reads of "
                             f"{list(file_patterns)}")
        matrix[rows] = emb
        filled[rows] = True
    if not filled.all():
        raise ValueError("RQ-VAE Trainer: the embeddings changed between the two reads of "
                         f"{list(file_patterns)}")
    return item_ids, matrix


def count_records(file_patterns: Sequence[str], embedding_dim: int, data_accessor=None) -> int:
    """The number of item records (one pass over the ids only)."""
    return sum(len(ids) for ids, _ in _read_batches(file_patterns, embedding_dim, data_accessor,
                                                    with_embeddings=False))


def _hash_unit(item_ids: np.ndarray, seed: int) -> np.ndarray:
    """A seeded uniform [0, 1) number per item id, from the id alone (not from file order)."""
    key = int(seed).to_bytes(8, "little", signed=True)
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(bytes(i), digest_size=8, key=key).digest(), "little")
         for i in item_ids.tolist()), np.float64, len(item_ids)) / 2.0 ** 64


def load_sample(file_patterns: Sequence[str], embedding_dim: int, num_items: int,
                max_items: int, seed: int, data_accessor=None):
    """(item_ids, embeddings) of a seeded sample of exactly `max_items` of the `num_items`
    records, sorted by item id. Items are kept by the seeded hash of their id (the smallest
    max_items values), so the sample does not depend on file or reader order, and memory holds
    the sample only, however large the catalog."""
    # Keep a little more than max_items / num_items of the ids while reading (4 sigma of the
    # binomial count), then cut to exactly max_items by hash value.
    keep = min(1.0, (max_items + 4.0 * np.sqrt(max_items)) / num_items)
    ids_kept, units_kept, emb_kept = [], [], []
    for ids, emb in _read_batches(file_patterns, embedding_dim, data_accessor,
                                  with_embeddings=True):
        units = _hash_unit(ids, seed)
        mask = units < keep
        ids_kept.append(ids[mask])
        units_kept.append(units[mask])
        emb_kept.append(emb[mask])
    ids, units = np.concatenate(ids_kept), np.concatenate(units_kept)
    chosen = np.argsort(units, kind="stable")[:max_items]
    chosen = chosen[np.argsort(ids[chosen], kind="stable")]
    return ids[chosen], np.concatenate(emb_kept)[chosen]


def run_fn(fn_args):
    cfg = RqVaeConfig.from_custom_config(getattr(fn_args, "custom_config", None))
    dim = cfg.embedding_dim or peek_embedding_dim(fn_args.train_files)
    accessor = getattr(fn_args, "data_accessor", None)
    num_items = count_records(fn_args.train_files, dim, accessor)
    if num_items > cfg.max_train_items:
        _, embeddings = load_sample(fn_args.train_files, dim, num_items, cfg.max_train_items,
                                    cfg.seed, accessor)
    else:
        _, embeddings = load_embeddings(fn_args.train_files, dim, accessor)
    # sorted by item id (load_embeddings): training depends on the seed only
    logging.info("RQ-VAE Trainer: training on %d of %d items x %d, config %s",
                 embeddings.shape[0], num_items, dim, cfg.to_json())
    result = train_lib.train_rqvae(embeddings, cfg)
    summary = dict(result.summary, catalog_items=int(num_items),
                   sampled=bool(num_items > cfg.max_train_items))
    logging.info("RQ-VAE Trainer: %s", json.dumps(
        {k: summary[k] for k in ("num_items", "catalog_items", "epochs", "stopped_early",
                                 "final_reconstruction_mse", "utilisation_per_level",
                                 "unique_sid_fraction", "seconds")}))

    run_dir: Optional[str] = getattr(fn_args, "model_run_dir", None)
    if run_dir:
        tf.io.gfile.makedirs(run_dir)
        with tf.io.gfile.GFile(os.path.join(run_dir, SUMMARY_FILE), "w") as f:
            json.dump(summary, f, indent=2)
    export_lib.export_rqvae(result.model, fn_args.serving_model_dir,
                            dict(cfg.to_dict(), embedding_dim=dim))
