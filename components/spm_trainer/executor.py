"""Beam wiring of SpmTrainer; training lives in core.py, the model helpers in model_proto.py,
spm_summary.json in summary.py (the method: docs/spm.md).

Pipeline (runner-agnostic: no shared local state, every DoFn is picklable):
  catalog.tsv (read with tf.io.gfile in a FlatMap) -> (item_id, SID sentence) -> AsDict side input
  read Split-train only -> item_id -> Count.PerElement -> {item_id: impressions} (one dict)
  dict -> TrainAndWrite(catalog) (ONE process): impressions per SID sentence (items not in the
          catalog counted), the sample (core.sample_counts: at most max_sentences impressions,
          seeded), SentencePiece in-process -> spm_<B>.model/.vocab for every budget B,
          spm_summary.json                                (idempotent: a retry rewrites the same)
"""
from __future__ import annotations

import collections
import json
import os
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import apache_beam as beam
import tensorflow as tf
from absl import logging
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils

from components.artifacts import ItemCatalog, SpmModels
from components.semantic_id_gen import core as sid_core
from components.spm_trainer import core, model_proto, summary as spm_summary
from components import examples_io
from components import progress
from models.sid import symbols as sid_symbols
from schemas import features

# how many distinct training sentences the tensorflow_text cross-check tokenises (plus every symbol)
_TF_TEXT_CHECK_SENTENCES = 5_000


def parse_item_id(record: bytes) -> bytes:
    """A serialized train row -> its item_id; ValueError unless there is exactly one."""
    return examples_io.single_item_id(tf.train.Example.FromString(record), "SpmTrainer")


def read_catalog_metadata(catalog_uri: str) -> Dict[str, Any]:
    """metadata.json of the ItemCatalog, with the symbol space checked."""
    path = os.path.join(catalog_uri, ItemCatalog.METADATA_JSON)
    with tf.io.gfile.GFile(path) as f:
        meta = json.load(f)
    sid_length, codebook_size = int(meta[sid_core.SID_LENGTH]), int(meta[sid_core.CODEBOOK_SIZE])
    breaker = bool(meta.get(sid_core.COLLISION_BREAKER, False))
    sid_symbols.check_symbol_space(sid_length, codebook_size,
                                   int(meta.get(sid_core.MAX_BREAKER_CODE, 0)) if breaker else None)
    return meta


def _catalog_entries(path: str, sid_length: int, codebook_size: int):
    """catalog.tsv (tf.io.gfile) -> (item_id, SID sentence) per item."""
    with tf.io.gfile.GFile(path, "rb") as f:
        for line in f:
            if line.strip():
                item_id, codes = core.parse_catalog_line(line, sid_length)
                yield item_id, sid_symbols.sid_sentence(codes, codebook_size)


def train_and_write(sentence_counts: Mapping[str, int], output_uri: str,
                    vocab_sizes: Sequence[int], sid_length: int, codebook_size: int,
                    model_type: str, seed: int, max_sentences: int, num_train_rows: int,
                    num_rows_item_not_in_catalog: int) -> Dict[str, Any]:
    """Trains one model per budget, writes spm_<B>.model / .vocab and spm_summary.json under
    output_uri (tf.io.gfile), returns the summary. Checks every model: each symbol a single
    non-unknown piece, and tensorflow_text giving the sentencepiece API's ids."""
    from models.sid import tf_ops  # pylint: disable=import-outside-toplevel

    if not sentence_counts:
        raise ValueError(
            f"SpmTrainer: none of the {num_train_rows:,} train rows has an item in the catalog "
            f"({num_rows_item_not_in_catalog:,} skipped): nothing to learn pieces from")
    symbols = sid_symbols.all_symbols(sid_length, codebook_size)
    check_sentences = sorted(sentence_counts, key=lambda s: (-sentence_counts[s], s))
    check_sentences = symbols + check_sentences[:_TF_TEXT_CHECK_SENTENCES]
    tf.io.gfile.makedirs(output_uri)
    models = {}
    for vocab_size in sorted(vocab_sizes):
        model = core.train_spm(sentence_counts, vocab_size, symbols, seed=seed,
                               model_type=model_type)
        stats = spm_summary.model_stats(model, sentence_counts, symbols)
        spm_summary.check_model(stats, len(symbols))
        matches = (tf_ops.tf_tokenize(model, check_sentences)
                   == model_proto.tokenize_sid_sentences(model, check_sentences))
        if not matches:
            raise ValueError(f"SpmTrainer: tensorflow_text and sentencepiece disagree on the "
                             f"pieces of the B={vocab_size} model")
        model_path = SpmModels.model_path(output_uri, vocab_size)
        vocab_path = SpmModels.vocab_path(output_uri, vocab_size)
        with tf.io.gfile.GFile(model_path, "wb") as f:
            f.write(model)
        with tf.io.gfile.GFile(vocab_path, "wb") as f:
            f.write(model_proto.vocab_text(model).encode("utf-8"))
        models[vocab_size] = {spm_summary.REQUESTED_VOCAB_SIZE: int(vocab_size),
                              spm_summary.MODEL_FILE: os.path.basename(model_path),
                              spm_summary.VOCAB_FILE: os.path.basename(vocab_path),
                              spm_summary.TF_TEXT_MATCHES: bool(matches), **stats}
    summary = spm_summary.make_summary(
        sentence_counts=sentence_counts, num_train_rows=num_train_rows,
        num_rows_item_not_in_catalog=num_rows_item_not_in_catalog, max_sentences=max_sentences,
        sid_length=sid_length, codebook_size=codebook_size, model_type=model_type, seed=seed,
        models=models)
    with tf.io.gfile.GFile(os.path.join(output_uri, SpmModels.SUMMARY_JSON), "wb") as f:
        f.write(spm_summary.to_json(summary).encode("utf-8"))
    return summary


class _TrainAndWrite(beam.DoFn):
    def __init__(self, output_uri: str, vocab_sizes: Sequence[int], sid_length: int,
                 codebook_size: int, model_type: str, seed: int, max_sentences: int):
        self._args = (output_uri, list(vocab_sizes), sid_length, codebook_size, model_type, seed,
                      max_sentences)
        self._seed = seed
        self._max_sentences = max_sentences

    def process(self, item_counts: Dict[bytes, int], catalog: Mapping[bytes, str]):
        sentence_counts: Dict[str, int] = collections.Counter()
        num_missing = 0
        for item_id, count in item_counts.items():
            sentence = catalog.get(item_id)
            if sentence is None:
                num_missing += count
            else:
                sentence_counts[sentence] += count
        sampled = core.sample_counts(sentence_counts, self._max_sentences, self._seed)
        summary = train_and_write(sampled, *self._args,
                                  num_train_rows=sum(item_counts.values()),
                                  num_rows_item_not_in_catalog=num_missing)
        yield spm_summary.summary_line(summary)


def read_exec_properties(exec_properties: Dict[str, Any]) -> Tuple[List[int], str, int, int]:
    sizes = exec_properties[core.VOCAB_SIZES_KEY]
    if isinstance(sizes, str):
        sizes = json.loads(sizes)
    model_type = str(exec_properties.get(core.MODEL_TYPE_KEY) or "unigram")
    seed = int(exec_properties.get(core.SEED_KEY) or 0)
    max_sentences = int(exec_properties[core.MAX_SENTENCES_KEY])
    sizes = core.validate_params([int(v) for v in sizes], model_type, seed, max_sentences)
    return sizes, model_type, seed, max_sentences


class Executor(base_beam_executor.BaseBeamExecutor):
    """Examples (train split) + ItemCatalog -> SpmModels."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        vocab_sizes, model_type, seed, max_sentences = read_exec_properties(exec_properties)

        examples = input_dict[core.EXAMPLES_KEY]
        splits = artifact_utils.decode_split_names(
            artifact_utils.get_single_instance(examples).split_names)
        if features.TRAIN not in splits:
            raise ValueError(f"SpmTrainer: the examples have no {features.TRAIN!r} split "
                             f"(splits {splits})")
        train_uri = artifact_utils.get_split_uri(examples, features.TRAIN)
        catalog_uri = artifact_utils.get_single_uri(input_dict[core.CATALOG_KEY])
        meta = read_catalog_metadata(catalog_uri)
        sid_length = int(meta[sid_core.SID_LENGTH])
        codebook_size = int(meta[sid_core.CODEBOOK_SIZE])
        for vocab_size in vocab_sizes:  # fail before any Beam work
            core.check_vocab_size(vocab_size, sid_length * codebook_size)
        output = artifact_utils.get_single_instance(output_dict[core.SPM_MODELS_KEY])
        catalog_tsv = os.path.join(catalog_uri, ItemCatalog.CATALOG_TSV)

        with self._make_beam_pipeline() as p:
            catalog = (p
                       | "CatalogPath" >> beam.Create([catalog_tsv])
                       | "ReadCatalog" >> beam.FlatMap(_catalog_entries, sid_length,
                                                       codebook_size))
            rows = (p
                    | "ReadTrain" >> beam.io.ReadFromTFRecord(os.path.join(train_uri, "*"))
                    | "Progress" >> beam.ParDo(
                        progress.LogProgress("SpmTrainer", "training rows read")))
            _ = (rows
                 | "ItemIds" >> beam.Map(parse_item_id)
                 | "ImpressionsPerItem" >> beam.combiners.Count.PerElement()
                 | "ToDict" >> beam.combiners.ToDict().with_defaults()
                 | "TrainAndWrite" >> beam.ParDo(
                     _TrainAndWrite(output.uri, vocab_sizes, sid_length, codebook_size,
                                    model_type, seed, max_sentences),
                     beam.pvalue.AsDict(catalog))
                 | "Log" >> beam.Map(logging.info))

        with tf.io.gfile.GFile(os.path.join(output.uri, SpmModels.SUMMARY_JSON)) as f:
            summary = json.load(f)
        output.set_string_custom_property(SpmModels.VOCAB_SIZES_PROPERTY,
                                          ",".join(str(v) for v in vocab_sizes))
        logging.info(spm_summary.summary_line(summary))
