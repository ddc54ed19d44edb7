"""Beam wiring of ContentEmbedder; the rules live in core.py (see its docstring).

Before the pipeline, `Do` reads the first item example to decide the mode (items carrying an
`embedding` feature -> precomputed; else the encoder artifact is required) and the text fields.

Pipeline (runner-agnostic: no globals, every DoFn is picklable):
  read Split-all -> ParseItem -> (item_id, item_text, precomputed embedding or None)
  precomputed: CheckPrecomputed (dimension of the first item, finite)
  encoder:     EncodeItems: (item_id, text) -> Beam RunInference with model_handler.py's
               MiniLmModelHandler (keyed by item_id; BatchElements(batch_size): bundles of about a
               thousand texts, which the encoder sorts by token count and cuts into model
               calls by its padded-token budget, parallel_calls of them at once; one encoder
               per worker process, with the num_threads / allow_spinning / parallel_calls exec
               properties, copied from a remote artifact URI to a local temp folder if need be;
               RunInference metrics under "ContentEmbedder") -> CheckEmbedding (finite, naming
               the item) -> Progress. Over several DirectRunner worker processes, a Reshuffle
               first spreads the items over them (else the read's one bundle, fused with the
               encoding, runs on one worker).
  -> ToExample (item_id, embedding, item_text) -> WriteExamples (Split-all/data_tfrecord-*.gz,
     without WriteSplit's Reshuffle, which would hold every embedding in memory)
  -> stats -> WriteStats (embedding_summary.json; Do adds the total seconds)
"""
from __future__ import annotations

import collections
import json
import os
import time
from typing import Any, Dict, List, Optional, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf
from absl import logging
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils

from components import examples_io
from components import progress
from components.content_embedder import core
from components.content_embedder.model_handler import MiniLmModelHandler
from models.content_encoder import validate_encoder_dir
from schemas import features

# Channel keys (distinct across INPUTS and OUTPUTS, as ComponentSpec requires).
ITEMS_KEY = "items"
ENCODER_KEY = "encoder"
EMBEDDINGS_KEY = "embeddings"

_FILE_FORMAT = examples_io.FILE_FORMAT

Item = collections.namedtuple("Item", ["item_id", "text", "embedding"])


# --- parsing -------------------------------------------------------------------------------------

def _item_id(example: tf.train.Example) -> bytes:
    return examples_io.single_item_id(example, "ContentEmbedder")


def _bytes_features(example: tf.train.Example) -> List[str]:
    return [name for name, f in example.features.feature.items()
            if f.WhichOneof("kind") == "bytes_list"]


def _embedding_values(example: tf.train.Example) -> Optional[List[float]]:
    feature = example.features.feature.get(features.ITEM_EMBEDDING)
    if feature is None or feature.WhichOneof("kind") is None:
        return None
    if feature.WhichOneof("kind") != "float_list":
        raise ValueError(f"ContentEmbedder: item {_item_id(example).decode('utf-8', 'replace')!r}"
                         f": {features.ITEM_EMBEDDING!r} must be a float list")
    return list(feature.float_list.value)


def parse_item(serialized: bytes, text_fields: List[str]) -> Item:
    """A serialized items tf.Example -> Item(item_id bytes, item text, embedding list or None)."""
    example = tf.train.Example.FromString(serialized)
    item_id = _item_id(example)
    fmap = example.features.feature
    record = {name: fmap[name].bytes_list.value[0] for name in text_fields
              if name in fmap and fmap[name].bytes_list.value}
    return Item(item_id, core.item_text(record, text_fields), _embedding_values(example))


def to_example(item: Item) -> bytes:
    ex = tf.train.Example()
    f = ex.features.feature
    f[features.ITEM_ID].bytes_list.value.append(item.item_id)
    # tolist(): Python floats extend the repeated field ~1.5x faster than numpy scalars.
    f[features.ITEM_EMBEDDING].float_list.value.extend(
        np.asarray(item.embedding, np.float32).tolist())
    f[features.ITEM_TEXT].bytes_list.value.append(item.text.encode("utf-8"))
    return ex.SerializeToString()


def _input_files(split_uri: str) -> List[str]:
    files = sorted(tf.io.gfile.glob(os.path.join(split_uri, "*")))
    return [f for f in files if not tf.io.gfile.isdir(f)]


def first_example(split_uri: str) -> Optional[tf.train.Example]:
    """The first tf.Example of the first non-empty TFRecord file of a split (gzip by suffix)."""
    for path in _input_files(split_uri):
        compression = "GZIP" if path.endswith(".gz") else ""
        for record in tf.data.TFRecordDataset(path, compression_type=compression).take(1):
            return tf.train.Example.FromString(record.numpy())
    return None


# --- DoFns ---------------------------------------------------------------------------------------

class _ParseItem(beam.DoFn):
    """Serialized item example -> Item; the precomputed embedding must be there iff expected."""

    def __init__(self, text_fields: List[str], precomputed: bool):
        self._text_fields = list(text_fields)
        self._precomputed = precomputed

    def process(self, serialized: bytes):
        item = parse_item(serialized, self._text_fields)
        if (item.embedding is not None) != self._precomputed:
            raise ValueError(
                f"ContentEmbedder: item {item.item_id.decode('utf-8', 'replace')!r} "
                f"{'lacks' if self._precomputed else 'has'} an {features.ITEM_EMBEDDING!r} "
                f"feature while the first item read {'has' if self._precomputed else 'lacks'} "
                f"one: either every item carries a precomputed embedding or none does")
        yield item


class _CheckPrecomputed(beam.DoFn):
    def __init__(self, expected_dim: int):
        self._expected_dim = expected_dim

    def process(self, item: Item):
        yield item._replace(
            embedding=core.check_embedding(item.item_id, item.embedding, self._expected_dim))


def _keyed_text(item: Item) -> Tuple[bytes, str]:
    return item.item_id, item.text


def _embedded_item(keyed: Tuple[bytes, PredictionResult]) -> Item:
    """(item_id, PredictionResult(text, vector)) -> Item with its embedding, checked finite (the
    model handler checked the batch's shape against the encoder's output size)."""
    item_id, result = keyed
    vector = result.inference
    return Item(item_id, result.example,
                core.check_embedding(item_id, vector, len(vector)))


class EncodeItems(beam.PTransform):
    """Items -> the same Items with their encoder embedding, through Beam RunInference.

    encoder_uri: the ContentEncoder artifact's folder (local or remote); batch_size: texts per
    bundle handed to the encoder; num_threads: onnxruntime threads per model call,
    allow_spinning: onnxruntime thread spinning (None: the encoder's defaults); parallel_calls:
    model calls at once per worker process.
    """

    def __init__(self, encoder_uri: str, batch_size: int, num_threads: Optional[int] = None,
                 allow_spinning: Optional[bool] = None, parallel_calls: int = 1):
        super().__init__()
        self._handler = KeyedModelHandler(
            MiniLmModelHandler(encoder_uri, batch_size, num_threads=num_threads,
                               allow_spinning=allow_spinning, parallel_calls=parallel_calls))

    def expand(self, items):
        return (items
                | "KeyByItemId" >> beam.Map(_keyed_text)
                | "RunInference" >> RunInference(self._handler)
                | "CheckEmbedding" >> beam.Map(_embedded_item))


class _StatsFn(beam.CombineFn):
    """Items -> {num_items, embedding_dim, num_empty_text}."""

    def create_accumulator(self):
        return [0, set(), 0]

    def add_input(self, acc, item: Item):
        acc[0] += 1
        acc[1].add(len(item.embedding))
        acc[2] += int(not item.text)
        return acc

    def merge_accumulators(self, accumulators):
        merged = self.create_accumulator()
        for count, dims, empty in accumulators:
            merged[0] += count
            merged[1] |= dims
            merged[2] += empty
        return merged

    def extract_output(self, acc):
        if len(acc[1]) > 1:  # cannot happen after the checks; never write mixed dimensions
            raise ValueError(f"ContentEmbedder: embeddings of several dimensions {sorted(acc[1])}")
        return {"num_items": acc[0], "embedding_dim": max(acc[1], default=0),
                "num_empty_text": acc[2]}


class _WriteStats(beam.DoFn):
    """Writes the counts to embedding_summary.json (idempotent); Do completes the file."""

    def __init__(self, path: str):
        self._path = path

    def process(self, stats: Dict[str, Any]):
        with FileSystems.create(self._path) as f:
            f.write(json.dumps(stats, sort_keys=True).encode("utf-8"))
        yield stats


def _worker_processes(beam_args: List[str]) -> int:
    """The DirectRunner's worker processes these Beam args ask for (1 in memory)."""
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
    options = PipelineOptions(list(beam_args)).view_as(DirectOptions)
    return options.direct_num_workers if options.direct_running_mode == "multi_processing" else 1


# --- executor ------------------------------------------------------------------------------------

def _plan(input_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]
          ) -> Tuple[str, List[str], Optional[int], Optional[str], int]:
    """(input split uri, text fields, precomputed dim or None, encoder uri or None, batch size)."""
    batch_size = core.check_batch_size(exec_properties.get(core.BATCH_SIZE_KEY,
                                                           core.DEFAULT_BATCH_SIZE))
    requested = core.parse_text_fields(exec_properties.get(core.TEXT_FIELDS_KEY))
    split_uri = artifact_utils.get_split_uri(input_dict[ITEMS_KEY], features.SPLIT_ALL)
    first = first_example(split_uri)
    if first is None:
        raise ValueError(f"ContentEmbedder: the items split {split_uri} holds no item")
    text_fields = core.resolve_text_fields(requested, _bytes_features(first))
    values = _embedding_values(first)
    if values is not None:
        if not values:
            raise ValueError(f"ContentEmbedder: item "
                             f"{_item_id(first).decode('utf-8', 'replace')!r}: empty "
                             f"{features.ITEM_EMBEDDING!r}")
        return split_uri, text_fields, len(values), None, batch_size
    encoders = input_dict.get(ENCODER_KEY) or []
    if not encoders:
        raise ValueError(
            "ContentEmbedder: the items carry no precomputed embedding, so the `encoder` input "
            "(a ContentEncoder artifact: model.onnx + tokenizer.json) is required; wire "
            "tfx.dsl.Importer(source_uri=encoder_dir, artifact_type=ContentEncoder)")
    encoder_uri = artifact_utils.get_single_instance(encoders).uri
    validate_encoder_dir(encoder_uri, exists=tf.io.gfile.exists)
    return split_uri, text_fields, None, encoder_uri, batch_size


class Executor(base_beam_executor.BaseBeamExecutor):
    """Items (split `all`) -> Examples[all] of item_id, embedding, item_text."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        start = time.monotonic()
        self._log_startup(input_dict, output_dict, exec_properties)
        split_uri, text_fields, precomputed_dim, encoder_uri, batch_size = _plan(
            input_dict, exec_properties)
        num_threads = core.check_num_threads(exec_properties.get(core.NUM_THREADS_KEY))
        allow_spinning = core.parse_allow_spinning(exec_properties.get(core.ALLOW_SPINNING_KEY))
        parallel_calls = core.check_num_threads(exec_properties.get(core.PARALLEL_CALLS_KEY),
                                                core.PARALLEL_CALLS_KEY) or 1
        source = core.SOURCE_PRECOMPUTED if precomputed_dim else core.SOURCE_ENCODER

        output_artifact = artifact_utils.get_single_instance(output_dict[EMBEDDINGS_KEY])
        output_artifact.split_names = artifact_utils.encode_split_names([features.SPLIT_ALL])
        summary_path = os.path.join(output_artifact.uri, core.SUMMARY_FILE)

        with self._make_beam_pipeline() as p:
            items = (p
                     | "Read" >> beam.io.ReadFromTFRecord(os.path.join(split_uri, "*"))
                     | "ParseItem" >> beam.ParDo(_ParseItem(text_fields, bool(precomputed_dim))))
            if precomputed_dim:
                embedded = items | "CheckPrecomputed" >> beam.ParDo(
                    _CheckPrecomputed(precomputed_dim))
            else:
                if _worker_processes(self._beam_pipeline_args) > 1:
                    items = items | "SpreadOverWorkers" >> beam.Reshuffle()
                embedded = (items
                            | "Encode" >> EncodeItems(encoder_uri, batch_size, num_threads,
                                                      allow_spinning, parallel_calls)
                            | "Progress" >> beam.ParDo(
                                progress.LogProgress("ContentEmbedder", "items embedded")))
            _ = (embedded
                 | "ToExample" >> beam.Map(to_example)
                 | "WriteSplit" >> examples_io.WriteExamples(
                     artifact_utils.get_split_uri(output_dict[EMBEDDINGS_KEY],
                                                  features.SPLIT_ALL)))
            _ = (embedded
                 | "Stats" >> beam.CombineGlobally(_StatsFn())
                 | "WriteStats" >> beam.ParDo(_WriteStats(summary_path)))

        examples_io.mark_tf_example_output(
            output_artifact, artifact_utils.get_single_instance(input_dict[ITEMS_KEY]))

        with fileio.open(summary_path) as f:
            stats = json.loads(f.read())
        summary = core.make_summary(
            num_items=stats["num_items"], embedding_dim=stats["embedding_dim"], source=source,
            encoder_uri=encoder_uri, text_fields=text_fields,
            num_empty_text=stats["num_empty_text"], seconds=time.monotonic() - start)
        with fileio.open(summary_path, "w") as f:
            f.write(json.dumps(summary, indent=2, sort_keys=True))
        if summary["num_empty_text"]:
            logging.warning("ContentEmbedder: %d item(s) have empty text (every text field "
                            "empty); their embedding is that of an empty string",
                            summary["num_empty_text"])
        logging.info(core.summary_line(summary))
