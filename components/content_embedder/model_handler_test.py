"""The RunInference ModelHandler of the content encoder, and EncodeItems (RunInference in a
DirectRunner pipeline): same vectors as the encoder on its own, remote encoder URIs, metrics."""
import os
import uuid

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import PredictionResult
from apache_beam.testing.util import assert_that

from components.content_embedder.executor import EncodeItems, Item
from components.content_embedder.model_handler import (METRICS_NAMESPACE, MiniLmModelHandler,
                                                       load_encoder)
from models.content_encoder import ENCODER_FILES, MiniLmEncoder, prepare_encoder_dir

TEXTS = ["Toy Story 1995 Animation Children's Comedy", "GoldenEye 1995 Action Adventure Thriller",
         "Four Rooms 1995 Thriller", "", "Copycat 1995"]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return prepare_encoder_dir(str(tmp_path_factory.mktemp("encoder")))


@pytest.fixture(scope="module")
def reference(encoder_dir):
    return MiniLmEncoder(encoder_dir, num_threads=2).encode(TEXTS)


@pytest.fixture
def remote_encoder_dir(encoder_dir):
    """The encoder folder on TF's in-memory file system (only tf.io.gfile reads it)."""
    root = f"ram://encoder-{uuid.uuid4().hex[:8]}/enc"
    tf.io.gfile.makedirs(root)
    for name in ENCODER_FILES:
        tf.io.gfile.copy(os.path.join(encoder_dir, name), f"{root}/{name}", overwrite=True)
    yield root
    tf.io.gfile.rmtree(root)


def test_handler_encodes_a_batch_like_the_encoder(encoder_dir, reference):
    handler = MiniLmModelHandler(encoder_dir, batch_size=16, num_threads=2)
    assert handler.batch_elements_kwargs() == {"min_batch_size": 16, "max_batch_size": 16}
    assert handler.get_metrics_namespace() == METRICS_NAMESPACE == "ContentEmbedder"
    assert not handler.share_model_across_processes()
    assert handler.get_num_bytes(["ab", "é"]) == 4
    model = handler.load_model()
    results = list(handler.run_inference(TEXTS, model))
    assert [r.example for r in results] == TEXTS
    assert all(isinstance(r, PredictionResult) for r in results)
    np.testing.assert_allclose(np.stack([r.inference for r in results]), reference, atol=1e-6)
    assert list(handler.run_inference([], model)) == []


def test_handler_passes_threads_and_spinning_to_the_encoder(encoder_dir, reference):
    handler = MiniLmModelHandler(encoder_dir, batch_size=1024, num_threads=1,
                                 allow_spinning=False, parallel_calls=2)
    assert handler.batch_elements_kwargs() == {"min_batch_size": 1024, "max_batch_size": 1024}
    model = handler.load_model()
    assert model.parallel_calls == 2
    options = model.options_in_effect()
    assert options["intra_op_num_threads"] == 1
    assert options["session.intra_op.allow_spinning"] == "0"
    results = list(handler.run_inference(TEXTS, model))
    np.testing.assert_allclose(np.stack([r.inference for r in results]), reference, atol=1e-5)


def test_a_remote_encoder_is_copied_to_a_temp_folder_then_removed(remote_encoder_dir, reference,
                                                                  monkeypatch, tmp_path):
    assert not os.path.isdir(remote_encoder_dir)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    encoder = load_encoder(remote_encoder_dir, num_threads=2)
    np.testing.assert_allclose(encoder.encode(TEXTS), reference, atol=1e-6)
    assert os.listdir(tmp_path) == []  # the model and tokenizer live in memory


def test_encode_items_runs_inference_with_metrics(remote_encoder_dir, reference):
    items = [Item(str(i).encode(), text, None) for i, text in enumerate(TEXTS)]

    def check(got):
        assert sorted(item.item_id for item in got) == sorted(item.item_id for item in items)
        for item in got:
            i = int(item.item_id)
            assert item.text == TEXTS[i] and item.embedding.dtype == np.float32
            np.testing.assert_allclose(item.embedding, reference[i], atol=1e-5)

    pipeline = beam.Pipeline()
    embedded = (pipeline
                | beam.Create(items)
                | EncodeItems(remote_encoder_dir, batch_size=2, num_threads=2))
    assert_that(embedded, check)
    result = pipeline.run()
    result.wait_until_finish()
    counters = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    assert {c.key.metric.name: c.committed for c in counters["counters"]}["num_inferences"] == \
        len(TEXTS)
