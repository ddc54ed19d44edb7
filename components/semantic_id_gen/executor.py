"""Beam wiring of SemanticIdGen; the rules live in core.py, the report in report.py.

Pipeline (runner-agnostic: no shared local state, every DoFn is picklable, the RQ-VAE is loaded
on each worker by tfx_bsl's RunInference):
  read Split-all -> parse items
  items -> CombineGlobally(first item's dimension)                      [reference dimension]
  items -> ValidateItem(reference side input)          fails naming the item on a bad embedding
        -> (item, tf.Example(embedding)) -> RunInference(serving_default) -> codes, error
        -> key by the L codes -> GroupByKey -> collision breaker per group  [catalog items]
  catalog items -> tf.Example -> WriteSplit(catalog/items/, gzipped TFRecords)
  catalog items -> ToList -> WriteCatalogAndReport (one worker: catalog.tsv, embeddings.npy,
                   metadata.json, sid_report.json/.md/.png)
"""
from __future__ import annotations

import collections
import io
import json
import os
from typing import Any, Dict, List, Optional, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf
from absl import logging
from tfx import types
from tfx.components.example_gen import write_split
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import path_utils
from tfx_bsl.public.beam import RunInference
from tfx_bsl.public.proto import model_spec_pb2

from components.artifacts import ItemCatalog, SidReport
from components.semantic_id_gen import core
from components.semantic_id_gen import report as sid_report
from pipeline import features

# One validated item, as it travels to the model and back (a plain namedtuple: pickled).
Item = collections.namedtuple("Item", ["item_id", "item_text", "embedding"])
# One catalog row (codes: the L RQ-VAE codes; semantic_id: the final codes).
CatalogItem = collections.namedtuple(
    "CatalogItem", ["item_id", "codes", "semantic_id", "reconstruction_error", "embedding",
                    "item_text"])


# --- parsing and validation ------------------------------------------------------------------

def parse_item(serialized: bytes) -> Tuple[bytes, bytes, Optional[np.ndarray]]:
    """A serialized embeddings tf.Example -> (item_id, item_text, embedding or None).

    ValueError unless the example holds exactly one bytes item_id; item_text may be absent
    (b""); the embedding is None when absent or empty (ValidateItem rejects it, naming the id).
    """
    example = tf.train.Example.FromString(serialized)
    fmap = example.features.feature
    ids = fmap[features.ITEM_ID].bytes_list.value if features.ITEM_ID in fmap else ()
    if len(ids) != 1:
        raise ValueError(
            f"SemanticIdGen: every embeddings example needs exactly one bytes "
            f"{features.ITEM_ID!r}; got {list(ids)!r} in an example with features "
            f"{sorted(fmap.keys())}")
    item_id = core.validate_item_id(ids[0])
    texts = fmap[features.ITEM_TEXT].bytes_list.value if features.ITEM_TEXT in fmap else ()
    values = (fmap[features.ITEM_EMBEDDING].float_list.value
              if features.ITEM_EMBEDDING in fmap else ())
    embedding = np.asarray(values, dtype=np.float32) if len(values) else None
    return item_id, b" ".join(texts), embedding


class _FirstItemDim(beam.CombineFn):
    """(item_id, dim) of the first item by id that has an embedding; None on no such item."""

    def create_accumulator(self):
        return None

    def add_input(self, acc, item):
        item_id, _, emb = item
        if emb is None:
            return acc
        cand = (item_id, int(emb.shape[0]))
        return cand if acc is None or cand < acc else acc

    def merge_accumulators(self, accumulators):
        best = None
        for acc in accumulators:
            if acc is not None and (best is None or acc < best):
                best = acc
        return best

    def extract_output(self, acc):
        return acc


class _ValidateItem(beam.DoFn):
    """Fails on an item without a finite embedding of the expected dimension (naming it)."""

    def __init__(self, model_dim: Optional[int]):
        self._model_dim = model_dim

    def process(self, item, first_item):
        item_id, text, emb = item
        if self._model_dim is not None:
            expected, ref = self._model_dim, "the RQ-VAE's input"
        elif first_item is not None:
            expected, ref = first_item[1], f"the first item's ({core.show_id(first_item[0])})"
        else:
            expected, ref = None, "expected"
        emb = core.validate_embedding(item_id, emb, expected, ref)
        yield Item(item_id, text, emb)


def model_input(item: Item):
    """(item, serialized tf.Example with the embedding only): keyed input of RunInference."""
    example = tf.train.Example()
    example.features.feature[features.ITEM_EMBEDDING].float_list.value[:] = item.embedding
    return item, example.SerializeToString()


def _tensor_values(predict_log, name: str) -> np.ndarray:
    outputs = predict_log.response.outputs
    if name not in outputs:
        raise ValueError(f"SemanticIdGen: the RQ-VAE's {features.RQVAE_SERVING_SIGNATURE!r} "
                         f"signature gave no {name!r} output (outputs: {sorted(outputs)})")
    return tf.make_ndarray(outputs[name]).reshape(-1)


class _ParsePrediction(beam.DoFn):
    """(Item, PredictionLog) -> (codes, (Item, codes, reconstruction_error))."""

    def __init__(self, num_levels: int, codebook_size: int):
        self._num_levels = num_levels
        self._codebook_size = codebook_size

    def process(self, keyed):
        item, log = keyed
        predict_log = log.predict_log
        codes = core.validate_codes(
            item.item_id, _tensor_values(predict_log, features.RQVAE_CODES_OUTPUT),
            self._num_levels, self._codebook_size)
        errors = _tensor_values(predict_log, features.RQVAE_RECONSTRUCTION_ERROR_OUTPUT)
        if errors.size != 1:
            raise ValueError(f"SemanticIdGen: the RQ-VAE gave {errors.size} reconstruction "
                             f"errors for item {core.show_id(item.item_id)}, expected 1")
        yield codes, (item, float(errors[0]))


class _AssignSemanticIds(beam.DoFn):
    """One group of items with equal L codes -> CatalogItems (the collision breaker)."""

    def __init__(self, collision_breaker: bool):
        self._collision_breaker = collision_breaker

    def process(self, group):
        codes, members = group
        by_id: Dict[bytes, Tuple[Item, float]] = {}
        ids: List[bytes] = []
        for item, error in members:
            ids.append(item.item_id)  # repeats kept: group_semantic_ids rejects them
            by_id[item.item_id] = (item, error)
        for item_id, sid in core.group_semantic_ids(codes, ids, self._collision_breaker):
            item, error = by_id[item_id]
            yield CatalogItem(item_id, codes, sid, error, item.embedding, item.item_text)


def encode_catalog_item(item: CatalogItem) -> bytes:
    """The items/ tf.Example of one catalog row."""
    example = tf.train.Example()
    fmap = example.features.feature
    fmap[features.ITEM_ID].bytes_list.value.append(item.item_id)
    fmap[features.SEMANTIC_ID].int64_list.value[:] = list(item.semantic_id)
    fmap[features.SEMANTIC_ID_STR].bytes_list.value.append(
        core.sid_to_str(item.semantic_id).encode("utf-8"))
    fmap[features.ITEM_EMBEDDING].float_list.value[:] = item.embedding
    fmap[features.ITEM_TEXT].bytes_list.value.append(item.item_text)
    return example.SerializeToString()


# --- the one-worker writer -------------------------------------------------------------------

def _write(path: str, data: bytes) -> None:
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(data)


def write_catalog_and_report(items: List[CatalogItem], catalog_uri: str, report_uri: str,
                             num_levels: int, codebook_size: int,
                             collision_breaker: bool) -> Dict[str, Any]:
    """Writes catalog.tsv, embeddings.npy, metadata.json and the three report files; returns
    the report dict. Idempotent (a retried bundle rewrites the same files)."""
    if not items:
        raise ValueError("SemanticIdGen: the embeddings split holds no items")
    items = sorted(items, key=lambda it: it.item_id)
    ids = [it.item_id for it in items]
    core.check_unique_ids(ids)
    sids = [it.semantic_id for it in items]
    dims = {it.embedding.shape[0] for it in items}
    if len(dims) != 1:  # validated upstream; a last guard before writing a ragged matrix
        raise ValueError(f"SemanticIdGen: embeddings of several dimensions {sorted(dims)}")
    embeddings = np.stack([it.embedding for it in items]).astype(np.float32)

    tf.io.gfile.makedirs(catalog_uri)
    _write(os.path.join(catalog_uri, ItemCatalog.CATALOG_TSV), core.catalog_tsv(ids, sids))
    buf = io.BytesIO()
    np.save(buf, embeddings, allow_pickle=False)
    _write(os.path.join(catalog_uri, ItemCatalog.EMBEDDINGS_NPY), buf.getvalue())
    metadata = core.make_metadata(len(items), num_levels, codebook_size, embeddings.shape[1],
                                  collision_breaker, sids)
    _write(os.path.join(catalog_uri, ItemCatalog.METADATA_JSON),
           core.to_json(metadata).encode("utf-8"))

    report = sid_report.compute_report(
        ids, np.asarray([it.codes for it in items], dtype=np.int64).reshape(-1, num_levels),
        sids, embeddings, [it.reconstruction_error for it in items],
        [it.item_text for it in items], num_levels=num_levels, codebook_size=codebook_size,
        collision_breaker=collision_breaker)
    if collision_breaker and report["duplicate_sids_after_breaker"]:
        raise ValueError("SemanticIdGen: duplicate Semantic IDs after the collision breaker "
                         f"({report['duplicate_sids_after_breaker']} items)")
    sid_report.write_report(report_uri, report)
    return report


class _WriteCatalogAndReport(beam.DoFn):
    def __init__(self, catalog_uri: str, report_uri: str, num_levels: int, codebook_size: int,
                 collision_breaker: bool):
        self._args = (catalog_uri, report_uri, num_levels, codebook_size, collision_breaker)

    def process(self, items: List[CatalogItem]):
        report = write_catalog_and_report(items, *self._args)
        yield core.summary_line(report)


# --- the model -----------------------------------------------------------------------------------

def _static_dim(tensor_info, axis: int) -> Optional[int]:
    dims = tensor_info.tensor_shape.dim
    if tensor_info.tensor_shape.unknown_rank or len(dims) <= axis or dims[axis].size < 0:
        return None
    return int(dims[axis].size)


def inspect_model(model_path: str, num_levels: int) -> Optional[int]:
    """Checks the RQ-VAE SavedModel's signatures; returns its input dimension E when the
    `encode` signature declares it (else None). ValueError on a missing serving signature or
    a static codes width other than num_levels."""
    from tensorflow.python.saved_model import loader_impl  # pylint: disable=g-direct-tensorflow-import

    if not tf.io.gfile.exists(model_path):
        raise ValueError(f"SemanticIdGen: no RQ-VAE SavedModel at {model_path}")
    saved_model = loader_impl.parse_saved_model(model_path)
    graphs = [g for g in saved_model.meta_graphs
              if tf.saved_model.SERVING in g.meta_info_def.tags] or list(saved_model.meta_graphs)
    signatures = graphs[0].signature_def
    serving = signatures.get(features.RQVAE_SERVING_SIGNATURE)
    if serving is None:
        raise ValueError(
            f"SemanticIdGen: the RQ-VAE SavedModel at {model_path} has no "
            f"{features.RQVAE_SERVING_SIGNATURE!r} signature (has {sorted(signatures)})")
    for name in (features.RQVAE_CODES_OUTPUT, features.RQVAE_RECONSTRUCTION_ERROR_OUTPUT):
        if name not in serving.outputs:
            raise ValueError(
                f"SemanticIdGen: the RQ-VAE's {features.RQVAE_SERVING_SIGNATURE!r} signature "
                f"has no {name!r} output (has {sorted(serving.outputs)})")
    width = _static_dim(serving.outputs[features.RQVAE_CODES_OUTPUT], 1)
    if width is not None and width != num_levels:
        raise ValueError(f"SemanticIdGen: the RQ-VAE gives {width} codes per item but "
                         f"num_levels is {num_levels}")
    encode = signatures.get(features.RQVAE_ENCODE_SIGNATURE)
    if encode is not None and features.RQVAE_EMBEDDING_INPUT in encode.inputs:
        return _static_dim(encode.inputs[features.RQVAE_EMBEDDING_INPUT], 1)
    return None


def inference_spec(model_path: str) -> model_spec_pb2.InferenceSpecType:
    return model_spec_pb2.InferenceSpecType(saved_model_spec=model_spec_pb2.SavedModelSpec(
        model_path=model_path, signature_name=[features.RQVAE_SERVING_SIGNATURE]))


def read_exec_properties(exec_properties: Dict[str, Any]) -> Tuple[int, int, bool]:
    num_levels = int(exec_properties[core.NUM_LEVELS_KEY])
    codebook_size = int(exec_properties[core.CODEBOOK_SIZE_KEY])
    breaker = exec_properties.get(core.COLLISION_BREAKER_KEY, True)
    collision_breaker = bool(int(breaker)) if not isinstance(breaker, str) else (
        breaker.strip().lower() in ("1", "true", "yes"))
    core.validate_params(num_levels, codebook_size)
    return num_levels, codebook_size, collision_breaker


class Executor(base_beam_executor.BaseBeamExecutor):
    """Embeddings + RQ-VAE -> ItemCatalog + SidReport."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        num_levels, codebook_size, collision_breaker = read_exec_properties(exec_properties)

        input_uri = artifact_utils.get_split_uri(input_dict[core.EMBEDDINGS_KEY],
                                                 features.SPLIT_ALL)
        model = artifact_utils.get_single_instance(input_dict[core.MODEL_KEY])
        model_path = path_utils.serving_model_path(model.uri)
        model_dim = inspect_model(model_path, num_levels)
        catalog = artifact_utils.get_single_instance(output_dict[core.CATALOG_KEY])
        report = artifact_utils.get_single_instance(output_dict[core.SID_REPORT_KEY])
        logging.info("SemanticIdGen: RQ-VAE %s (input dimension %s)", model_path,
                     model_dim if model_dim is not None else "not declared")

        with self._make_beam_pipeline() as p:
            parsed = (p
                      | "Read" >> beam.io.ReadFromTFRecord(os.path.join(input_uri, "*"))
                      | "Parse" >> beam.Map(parse_item))
            first_item = parsed | "FirstItemDim" >> beam.CombineGlobally(_FirstItemDim())
            catalog_items = (
                parsed
                | "Validate" >> beam.ParDo(_ValidateItem(model_dim),
                                           beam.pvalue.AsSingleton(first_item))
                # keyed input; the hint makes RunInference emit (key, PredictionLog) pairs
                | "ModelInput" >> beam.Map(model_input).with_output_types(Tuple[Any, bytes])
                | "RunInference" >> RunInference(inference_spec(model_path))
                | "ParsePrediction" >> beam.ParDo(_ParsePrediction(num_levels, codebook_size))
                | "GroupByCodes" >> beam.GroupByKey()
                | "CollisionBreaker" >> beam.ParDo(_AssignSemanticIds(collision_breaker)))
            _ = (catalog_items
                 | "EncodeItems" >> beam.Map(encode_catalog_item)
                 | "WriteItems" >> write_split.WriteSplit(
                     os.path.join(catalog.uri, ItemCatalog.ITEMS_DIR),
                     example_gen_pb2.FORMAT_TFRECORDS_GZIP))
            _ = (catalog_items
                 | "CollectCatalog" >> beam.combiners.ToList()
                 | "WriteCatalogAndReport" >> beam.ParDo(_WriteCatalogAndReport(
                     catalog.uri, report.uri, num_levels, codebook_size, collision_breaker)))

        with tf.io.gfile.GFile(os.path.join(report.uri, SidReport.JSON_FILE)) as f:
            summary = json.load(f)
        for key in (core.NUM_ITEMS, core.SID_LENGTH):
            catalog.set_int_custom_property(key, int(summary[key]))
        logging.info(core.summary_line(summary))
