"""Beam RunInference ModelHandler for the MiniLM ONNX content encoder (models/content_encoder.py).

    handler = KeyedModelHandler(MiniLmModelHandler(encoder_uri, batch_size=1024))
    (item_id, text) pairs | RunInference(handler) -> (item_id, PredictionResult(text, vector))

RunInference then does what ContentEmbedder used to write by hand: one encoder per worker
process (loaded when its DoFn is set up and shared by the threads of that process: onnxruntime's
InferenceSession.run and a tokenizers Tokenizer's encode_batch may be called concurrently),
batching with BatchElements(min_batch_size = max_batch_size = batch_size): each bundle of
batch_size texts (about a thousand) goes to MiniLmEncoder.encode, which sorts it by token
count and cuts its model calls by the encoder's padded-token budget, parallel_calls of them at
once (models/content_encoder.py), so the bundle must be large enough to hold texts of similar
length. Beam metrics under the namespace "ContentEmbedder" (num_inferences,
inference_batch_latency_micro_secs, inference_request_batch_size,
inference_request_batch_byte_size (UTF-8 bytes of the texts), load_model_latency_milli_secs,
model_byte_size, failed_batches_counter).

The encoder URI is the ContentEncoder artifact's folder; one that is not a local folder (gs://,
ram://, ...) is first copied through tf.io.gfile to a local temp folder. The model and tokenizer
are read into memory when the encoder is built, so that folder is deleted right after.
share_model_across_processes is left False: the int8 model is ~23 MB.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence

import tensorflow as tf
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from models.content_encoder import ENCODER_FILES, MiniLmEncoder

METRICS_NAMESPACE = "ContentEmbedder"


def load_encoder(encoder_uri: str, num_threads: Optional[int] = None,
                 allow_spinning: Optional[bool] = None, parallel_calls: int = 1
                 ) -> MiniLmEncoder:
    """A MiniLmEncoder from a local folder, or from a remote one copied to a local temp folder
    (removed once the encoder holds the model and tokenizer in memory)."""
    kwargs = dict(num_threads=num_threads, allow_spinning=allow_spinning,
                  parallel_calls=parallel_calls)
    if os.path.isdir(encoder_uri):
        return MiniLmEncoder(encoder_uri, **kwargs)
    tmp_dir = tempfile.mkdtemp(prefix="content_encoder_")
    try:
        for name in ENCODER_FILES:
            tf.io.gfile.copy(os.path.join(encoder_uri, name), os.path.join(tmp_dir, name),
                             overwrite=True)
        return MiniLmEncoder(tmp_dir, **kwargs)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


class MiniLmModelHandler(ModelHandler[str, PredictionResult, MiniLmEncoder]):
    """Item texts -> PredictionResult(text, float32 unit-norm vector [D]).

    encoder_uri: the ContentEncoder artifact's folder (model.onnx + tokenizer.json), local or
    remote; batch_size: texts per bundle handed to the encoder, which buckets them by length
    (the component's batch_size exec property); num_threads: onnxruntime intra-op threads per
    model call (None: MiniLmEncoder's default); allow_spinning: onnxruntime thread spinning
    (None: onnxruntime's default; False when several workers share the cores); parallel_calls:
    model calls at once per worker process (threads; MiniLmEncoder).
    """

    def __init__(self, encoder_uri: str, batch_size: int, num_threads: Optional[int] = None,
                 allow_spinning: Optional[bool] = None, parallel_calls: int = 1):
        super().__init__()
        self._encoder_uri = encoder_uri
        self._batch_size = int(batch_size)
        self._num_threads = num_threads
        self._allow_spinning = allow_spinning
        self._parallel_calls = int(parallel_calls)

    def load_model(self) -> MiniLmEncoder:
        encoder = load_encoder(self._encoder_uri, self._num_threads, self._allow_spinning,
                               self._parallel_calls)
        logging.info("ContentEmbedder: encoder loaded in process %d, onnxruntime options in "
                     "effect %s, %d padded tokens per model call, %d call(s) at once",
                     os.getpid(), encoder.options_in_effect(), encoder.token_budget,
                     encoder.parallel_calls)
        return encoder

    def run_inference(self, batch: Sequence[str], model: MiniLmEncoder,
                      inference_args: Optional[Dict[str, Any]] = None
                      ) -> Iterable[PredictionResult]:
        texts = list(batch)
        vectors = model.encode(texts)
        dim = model.embedding_dim or vectors.shape[1]
        if vectors.shape != (len(texts), dim):
            raise ValueError(f"ContentEmbedder: the encoder returned shape {vectors.shape} for "
                             f"{len(texts)} texts, expected ({len(texts)}, {dim})")
        return [PredictionResult(text, vector) for text, vector in zip(texts, vectors)]

    def get_num_bytes(self, batch: Sequence[str]) -> int:
        return sum(len(text.encode("utf-8")) for text in batch)

    def get_metrics_namespace(self) -> str:
        return METRICS_NAMESPACE

    def batch_elements_kwargs(self) -> Mapping[str, Any]:
        return {"min_batch_size": self._batch_size, "max_batch_size": self._batch_size}

    def __repr__(self) -> str:
        return (f"MiniLmModelHandler(encoder_uri={self._encoder_uri!r}, "
                f"batch_size={self._batch_size}, num_threads={self._num_threads}, "
                f"allow_spinning={self._allow_spinning}, "
                f"parallel_calls={self._parallel_calls})")
