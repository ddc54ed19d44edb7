"""Beam wiring of SemanticIdGen; the rules live in core.py, the report in report.py.

Pipeline (runner-agnostic: no shared local state, every DoFn is picklable, the RQ-VAE is loaded
on each worker by tfx_bsl's RunInference):
  read Split-all -> parse items
  [only when the RQ-VAE does not declare its input dimension: CombineGlobally(first item's
   dimension) as a side input of Validate]
  items -> ValidateItem                                 fails naming the item on a bad embedding
        -> (item, tf.Example(embedding)) -> RunInference(serving_default) -> codes, error
        -> (codes, (item_id, error)): the embedding stays behind, so nothing large is shuffled
        -> GroupByKey(codes) -> collision breaker per group -> CatalogRow  [small rows]
  rows -> ToList -> WriteCatalog (one worker: catalog.tsv, metadata.json, and, reading the
          embeddings split again from its URI, embeddings.npy (streamed to a local scratch file
          row by row, then copied), reconstruction_errors.npy and items/ (gzipped TFRecords);
          sid_report.json/.md/.png)
With sid_mode "reuse" (a frozen SID space) the items already in the previous catalog skip the
model: only new items are coded, and instead of the GroupByKey one worker keeps every previous
SID and gives each new item the next free breaker code of its group (core.extend_semantic_ids).
Afterwards the executor adds `sid_space` (lineage, new items, changed SIDs, drift) to
metadata.json and sid_report.json.

Memory: the one worker holds the small rows (~0.4 KB an item) and at most COSINE_MAX_ITEMS
embeddings for the report, never the [N, E] matrix, so 1M items x 384-d fit in well under 4 GiB.
"""
from __future__ import annotations

import collections
import json
import os
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf
from absl import logging
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils
from tfx_bsl.public.beam import RunInference
from tfx_bsl.public.proto import model_spec_pb2

from components import progress
from components.artifacts import ItemCatalog, SidReport
from components.semantic_id_gen import core
from components.semantic_id_gen import report as sid_report
from schemas import features

# One validated item, as it travels to the model and back (a plain namedtuple: pickled).
Item = collections.namedtuple("Item", ["item_id", "item_text", "embedding"])
# One catalog row without the embedding (codes: the L RQ-VAE codes; semantic_id: the final codes).
CatalogRow = collections.namedtuple(
    "CatalogRow", ["item_id", "codes", "semantic_id", "reconstruction_error"])


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

    def process(self, item, first_item=None):
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
    """(Item, PredictionLog) -> (codes, (item_id, reconstruction_error))."""

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
        yield codes, (item.item_id, float(errors[0]))


class _AssignSemanticIds(beam.DoFn):
    """One group of items with equal L codes -> CatalogRows (the collision breaker)."""

    def __init__(self, collision_breaker: bool):
        self._collision_breaker = collision_breaker

    def process(self, group):
        codes, members = group
        errors: Dict[bytes, float] = {}
        ids: List[bytes] = []
        for item_id, error in members:
            ids.append(item_id)  # repeats kept: group_semantic_ids rejects them
            errors[item_id] = error
        for item_id, sid in core.group_semantic_ids(codes, ids, self._collision_breaker):
            yield CatalogRow(item_id, codes, sid, errors[item_id])


def encode_catalog_item(item_id: bytes, semantic_id, embedding, item_text: bytes) -> bytes:
    """The items/ tf.Example of one catalog row."""
    example = tf.train.Example()
    fmap = example.features.feature
    fmap[features.ITEM_ID].bytes_list.value.append(item_id)
    fmap[features.SEMANTIC_ID].int64_list.value[:] = list(semantic_id)
    fmap[features.SEMANTIC_ID_STR].bytes_list.value.append(
        core.sid_to_str(semantic_id).encode("utf-8"))
    fmap[features.ITEM_EMBEDDING].float_list.value[:] = embedding
    fmap[features.ITEM_TEXT].bytes_list.value.append(item_text)
    return example.SerializeToString()


# --- the one-worker writer -------------------------------------------------------------------

def _write(path: str, data: bytes) -> None:
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(data)


def _embedding_records(embeddings_uri: str):
    """Serialized examples of the embeddings split, file by file (any file system TF knows)."""
    files = sorted(tf.io.gfile.glob(os.path.join(embeddings_uri, "*")))
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    for path in files:
        yield from tf.compat.v1.io.tf_record_iterator(path, options=options)


class _ScratchNpy:
    """An [n, d] float32 .npy file on the worker's local scratch disk, written row by row at any
    row order (pwrite), so the matrix never sits in memory; copied to its URI at the end."""

    def __init__(self, directory: str, n: int, d: int):
        self.path = os.path.join(directory, ItemCatalog.EMBEDDINGS_NPY)
        self.n, self.d = n, d
        with open(self.path, "wb") as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "<f4", "fortran_order": False, "shape": (n, d)})
            self.offset = f.tell()
        self._fd = os.open(self.path, os.O_WRONLY)
        os.ftruncate(self._fd, self.offset + n * d * 4)

    def write_row(self, row: int, vector: np.ndarray) -> None:
        os.pwrite(self._fd, np.ascontiguousarray(vector, dtype="<f4").tobytes(),
                  self.offset + row * self.d * 4)

    def close(self) -> None:
        os.close(self._fd)

    def rows(self, indices: np.ndarray) -> np.ndarray:
        return np.array(np.load(self.path, mmap_mode="r")[indices], dtype=np.float32)


def write_catalog_and_report(rows: List[CatalogRow], embeddings_uri: str, catalog_uri: str,
                             report_uri: str, num_levels: int, codebook_size: int,
                             collision_breaker: bool) -> Dict[str, Any]:
    """Writes catalog.tsv, metadata.json, embeddings.npy, items/ and the three report files;
    returns the report dict. Idempotent (a retried bundle rewrites the same files)."""
    if not rows:
        raise ValueError("SemanticIdGen: the embeddings split holds no items")
    rows = sorted(rows, key=lambda r: r.item_id)
    ids = [r.item_id for r in rows]
    core.check_unique_ids(ids)
    sids = [r.semantic_id for r in rows]
    index = {item_id: i for i, item_id in enumerate(ids)}
    n = len(rows)
    texts: List[bytes] = [b""] * n
    written = np.zeros(n, dtype=bool)
    items_dir = os.path.join(catalog_uri, ItemCatalog.ITEMS_DIR)
    tf.io.gfile.makedirs(items_dir)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="semantic_id_gen_") as scratch:
        npy = None
        with tf.io.TFRecordWriter(
                os.path.join(items_dir, "data_tfrecord-00000-of-00001.gz"),
                options=tf.io.TFRecordOptions(compression_type="GZIP")) as items_out:
            for done, record in enumerate(_embedding_records(embeddings_uri), start=1):
                item_id, text, emb = parse_item(record)
                row = index.get(item_id)
                if row is None or written[row] or emb is None:
                    raise ValueError(
                        f"SemanticIdGen: item {core.show_id(item_id)} of the embeddings split "
                        "is not exactly once in the catalog (changed while the step ran?)")
                if npy is None:
                    npy = _ScratchNpy(scratch, n, emb.shape[0])
                elif emb.shape[0] != npy.d:  # validated upstream; a last guard before writing
                    raise ValueError(f"SemanticIdGen: embeddings of several dimensions "
                                     f"({npy.d}, {emb.shape[0]} for {core.show_id(item_id)})")
                npy.write_row(row, emb)
                written[row] = True
                texts[row] = text
                items_out.write(encode_catalog_item(item_id, sids[row], emb, text))
                if done % progress.REPORT_EVERY_ROWS == 0:
                    logging.info(progress.progress_line("SemanticIdGen", "catalog rows written",
                                                        done, time.monotonic() - started))
        if not written.all():
            missing = ids[int(np.flatnonzero(~written)[0])]
            raise ValueError(f"SemanticIdGen: item {core.show_id(missing)} has a SID but no "
                             "row in the embeddings split")
        npy.close()

        tf.io.gfile.makedirs(catalog_uri)
        _write(os.path.join(catalog_uri, ItemCatalog.CATALOG_TSV), core.catalog_tsv(ids, sids))
        tf.io.gfile.copy(npy.path, os.path.join(catalog_uri, ItemCatalog.EMBEDDINGS_NPY),
                         overwrite=True)
        errors_path = os.path.join(scratch, ItemCatalog.RECONSTRUCTION_ERRORS_NPY)
        np.save(errors_path, np.asarray([r.reconstruction_error for r in rows], np.float32))
        tf.io.gfile.copy(errors_path,
                         os.path.join(catalog_uri, ItemCatalog.RECONSTRUCTION_ERRORS_NPY),
                         overwrite=True)
        metadata = core.make_metadata(n, num_levels, codebook_size, npy.d, collision_breaker,
                                      sids)
        _write(os.path.join(catalog_uri, ItemCatalog.METADATA_JSON),
               core.to_json(metadata).encode("utf-8"))

        cosine_rows = sid_report.cosine_sample_rows(n)
        embeddings = npy.rows(cosine_rows if cosine_rows is not None else np.arange(n))
    report = sid_report.compute_report(
        ids, np.asarray([r.codes for r in rows], dtype=np.int64).reshape(-1, num_levels),
        sids, embeddings, [r.reconstruction_error for r in rows], texts,
        num_levels=num_levels, codebook_size=codebook_size,
        collision_breaker=collision_breaker, embedding_rows=cosine_rows)
    if collision_breaker and report["duplicate_sids_after_breaker"]:
        raise ValueError("SemanticIdGen: duplicate Semantic IDs after the collision breaker "
                         f"({report['duplicate_sids_after_breaker']} items)")
    sid_report.write_report(report_uri, report)
    return report


class _WriteCatalogAndReport(beam.DoFn):
    def __init__(self, embeddings_uri: str, catalog_uri: str, report_uri: str, num_levels: int,
                 codebook_size: int, collision_breaker: bool):
        self._args = (embeddings_uri, catalog_uri, report_uri, num_levels, codebook_size,
                      collision_breaker)

    def process(self, rows: List[CatalogRow]):
        report = write_catalog_and_report(rows, *self._args)
        yield core.summary_line(report)


# --- a frozen SID space (sid_mode "reuse") -------------------------------------------------------

def read_catalog_metadata(catalog_uri: str) -> Dict[str, Any]:
    with tf.io.gfile.GFile(os.path.join(catalog_uri, ItemCatalog.METADATA_JSON)) as f:
        return json.load(f)


def read_catalog_sids(catalog_uri: str) -> Dict[bytes, core.Codes]:
    """item_id -> semantic_id of a catalog's catalog.tsv, in row order (checked against its
    metadata's sid_length)."""
    sid_length = int(read_catalog_metadata(catalog_uri)[core.SID_LENGTH])
    with tf.io.gfile.GFile(os.path.join(catalog_uri, ItemCatalog.CATALOG_TSV), "rb") as f:
        return core.parse_catalog_tsv(f.read(), sid_length)


def read_catalog_errors(catalog_uri: str, num_items: int) -> np.ndarray:
    """A catalog's reconstruction errors, row-aligned; NaN for a catalog written before they
    were kept."""
    path = os.path.join(catalog_uri, ItemCatalog.RECONSTRUCTION_ERRORS_NPY)
    if not tf.io.gfile.exists(path):
        return np.full(num_items, np.nan, dtype=np.float32)
    with tf.io.gfile.GFile(path, "rb") as f:
        return np.load(f)


def check_reusable(previous_uri: str, num_levels: int, codebook_size: int,
                   collision_breaker: bool) -> None:
    """ValueError when the previous catalog's SID shape is not this run's: its SIDs cannot be
    kept as they are."""
    meta = read_catalog_metadata(previous_uri)
    asked = {core.NUM_LEVELS: num_levels, core.CODEBOOK_SIZE: codebook_size,
             core.COLLISION_BREAKER: collision_breaker}
    differ = [f"{k} {meta.get(k)!r} (this run: {v!r})" for k, v in asked.items()
              if meta.get(k) != v]
    if differ:
        raise ValueError(
            f"SemanticIdGen: --rqvae_mode reuse keeps the previous catalog's Semantic IDs "
            f"({previous_uri}), but it has {', '.join(differ)}. Run with the previous settings "
            "(e.g. --rqvae_codebook_size), or with --rqvae_mode train --refresh_sids to build a "
            "new SID space")


class _DropKnown(beam.DoFn):
    """Passes only the items that are not in the previous catalog (read once per worker)."""

    def __init__(self, previous_uri: str):
        self._previous_uri = previous_uri
        self._known = None

    def setup(self):
        self._known = set(read_catalog_sids(self._previous_uri))

    def process(self, item: Item):
        if item.item_id not in self._known:
            yield item


class _ExtendCatalog(beam.DoFn):
    """[(codes, (item_id, error)) of the new items] + every current item id -> CatalogRows:
    the previous catalog's items that are still in the catalog keep their SID and error, the
    new ones get theirs from core.extend_semantic_ids."""

    def __init__(self, previous_uri: str, num_levels: int, collision_breaker: bool):
        self._previous_uri = previous_uri
        self._num_levels = num_levels
        self._collision_breaker = collision_breaker

    def process(self, coded_new, current_ids):
        previous = read_catalog_sids(self._previous_uri)
        errors = read_catalog_errors(self._previous_uri, len(previous))
        current = set(current_ids)
        kept = {i: sid for i, sid in previous.items() if i in current}
        prev_error = {i: float(e) for i, e in zip(previous, errors)}
        new_codes = [(item_id, codes) for codes, (item_id, _) in coded_new]
        sids = core.extend_semantic_ids(kept, new_codes, self._num_levels,
                                        self._collision_breaker)
        rows = [CatalogRow(i, sid[:self._num_levels], sid, prev_error[i])
                for i, sid in kept.items()]
        rows += [CatalogRow(item_id, codes, sids[item_id], error)
                 for codes, (item_id, error) in coded_new]
        yield rows


def folder_sha256(uri: str) -> str:
    """sha256 over a folder's files (relative paths and contents, in path order)."""
    import hashlib
    digest = hashlib.sha256()
    paths = sorted(os.path.join(d, f) for d, _, files in tf.io.gfile.walk(uri) for f in files)
    for path in paths:
        digest.update(os.path.relpath(path, uri).encode("utf-8") + b"\0")
        with tf.io.gfile.GFile(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def lineage(artifact: types.Artifact, with_sha256: bool = True) -> Dict[str, Any]:
    """The MLMD id, URI and (optionally) content sha256 of an input artifact."""
    out: Dict[str, Any] = {"mlmd_id": int(artifact.id) if artifact.id else None,
                           "uri": artifact.uri}
    if with_sha256:
        out["sha256"] = folder_sha256(artifact.uri)
    return out


def sid_space_summary(mode: str, catalog_uri: str, model: types.Artifact,
                      previous: Optional[types.Artifact],
                      spm_models: Optional[types.Artifact]) -> Dict[str, Any]:
    """metadata.json's `sid_space`: where the SIDs come from and what changed since the
    previous catalog (new items, existing items whose SID changed, the drift signal)."""
    summary: Dict[str, Any] = {"mode": mode, "rqvae": lineage(model)}
    if spm_models is not None:
        summary["spm_models"] = lineage(spm_models)
    if previous is None:
        return summary
    summary["previous_catalog"] = lineage(previous, with_sha256=False)
    before = read_catalog_sids(previous.uri)
    now = read_catalog_sids(catalog_uri)
    errors = read_catalog_errors(catalog_uri, len(now))
    is_new = np.array([i not in before for i in now], dtype=bool)
    changed, compared = core.changed_semantic_ids(before, now)
    summary.update(new_items=int(is_new.sum()), existing_items=compared, sid_changed=changed,
                   sid_changed_share=changed / compared if compared else 0.0)
    summary["drift"] = core.reconstruction_drift(errors[~is_new], errors[is_new],
                                                 core.DRIFT_WARN_RATIO)
    return summary


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


def read_sid_mode(exec_properties: Dict[str, Any]) -> str:
    mode = exec_properties.get(core.SID_MODE_KEY) or "train"
    if mode not in core.SID_MODES:
        raise ValueError(f"SemanticIdGen: {core.SID_MODE_KEY} must be one of {core.SID_MODES}, "
                         f"got {mode!r}")
    return mode


class Executor(base_beam_executor.BaseBeamExecutor):
    """Embeddings + RQ-VAE -> ItemCatalog + SidReport."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        num_levels, codebook_size, collision_breaker = read_exec_properties(exec_properties)
        mode = read_sid_mode(exec_properties)
        previous = (input_dict.get(core.PREVIOUS_CATALOG_KEY) or [None])[-1]
        spm_models = (input_dict.get(core.SPM_MODELS_KEY) or [None])[-1]
        if mode == "reuse" and previous is None:
            raise ValueError(
                "SemanticIdGen: --rqvae_mode reuse needs an earlier catalog and RQ-VAE of this "
                "pipeline, and there is none: run once with --rqvae_mode train first")
        if mode == "reuse":
            check_reusable(previous.uri, num_levels, codebook_size, collision_breaker)
        if not input_dict.get(core.MODEL_KEY):
            raise ValueError("SemanticIdGen: no RQ-VAE model"
                             + (" of this pipeline to reuse: run once with --rqvae_mode train "
                                "first" if mode == "reuse" else ""))

        input_uri = artifact_utils.get_split_uri(input_dict[core.EMBEDDINGS_KEY],
                                                 features.SPLIT_ALL)
        model = input_dict[core.MODEL_KEY][-1]
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
            if model_dim is not None:
                validated = parsed | "Validate" >> beam.ParDo(_ValidateItem(model_dim))
            else:  # the first item's dimension is the reference (costs a pass over the items)
                first_item = parsed | "FirstItemDim" >> beam.CombineGlobally(_FirstItemDim())
                validated = parsed | "Validate" >> beam.ParDo(
                    _ValidateItem(None), beam.pvalue.AsSingleton(first_item))
            to_code = (validated if mode == "train" else
                       validated | "NewItemsOnly" >> beam.ParDo(_DropKnown(previous.uri)))
            coded = (to_code
                     # keyed input; the hint makes RunInference emit (key, PredictionLog) pairs
                     | "ModelInput" >> beam.Map(model_input).with_output_types(Tuple[Any, bytes])
                     | "RunInference" >> RunInference(inference_spec(model_path))
                     | "ParsePrediction" >> beam.ParDo(_ParsePrediction(num_levels,
                                                                         codebook_size))
                     | "Progress" >> beam.ParDo(progress.LogProgress("SemanticIdGen",
                                                                     "items coded")))
            if mode == "train":
                rows = (coded
                        | "GroupByCodes" >> beam.GroupByKey()
                        | "CollisionBreaker" >> beam.ParDo(_AssignSemanticIds(collision_breaker))
                        | "CollectCatalog" >> beam.combiners.ToList())
            else:
                current_ids = (validated | "ItemIds" >> beam.Map(lambda item: item.item_id)
                               | "AllItemIds" >> beam.combiners.ToList())
                rows = (coded
                        | "CollectNewItems" >> beam.combiners.ToList()
                        | "KeepAndExtend" >> beam.ParDo(
                            _ExtendCatalog(previous.uri, num_levels, collision_breaker),
                            beam.pvalue.AsSingleton(current_ids)))
            _ = rows | "WriteCatalogAndReport" >> beam.ParDo(_WriteCatalogAndReport(
                input_uri, catalog.uri, report.uri, num_levels, codebook_size,
                collision_breaker))

        sid_space = sid_space_summary(mode, catalog.uri, model, previous, spm_models)
        for uri, name in ((catalog.uri, ItemCatalog.METADATA_JSON),
                          (report.uri, SidReport.JSON_FILE)):
            path = os.path.join(uri, name)
            with tf.io.gfile.GFile(path) as f:
                content = json.load(f)
            content[core.SID_SPACE] = sid_space
            _write(path, core.to_json(content).encode("utf-8"))
        if previous is not None:
            logging.info(core.sid_space_line(sid_space))
            if sid_space["drift"]["refresh_due"]:
                logging.warning(core.drift_warning(sid_space["drift"]))

        with tf.io.gfile.GFile(os.path.join(report.uri, SidReport.JSON_FILE)) as f:
            summary = json.load(f)
        for key in (core.NUM_ITEMS, core.SID_LENGTH):
            catalog.set_int_custom_property(key, int(summary[key]))
        logging.info(core.summary_line(summary))
