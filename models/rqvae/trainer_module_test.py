"""run_fn end to end on a few gzipped tf.Examples, through TFX's own DataAccessor."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx import v1 as tfx
from tfx.components.trainer import fn_args_utils
from tfx.components.util import examples_utils, tfxio_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts

from models.rqvae import export as export_lib
from models.rqvae import trainer_module
from schemas import features

E, N = 24, 300
CUSTOM_CONFIG = dict(num_levels=3, codebook_size=8, latent_dim=8, hidden_units=[], beta=0.25,
                     epochs=3, batch_size=64, learning_rate=1e-3, dead_code_window=5, seed=0)


def _example(item_id: bytes, emb: np.ndarray) -> bytes:
    ex = tf.train.Example()
    ex.features.feature[features.ITEM_ID].bytes_list.value.append(item_id)
    ex.features.feature[features.ITEM_EMBEDDING].float_list.value.extend(emb.tolist())
    ex.features.feature[features.ITEM_TEXT].bytes_list.value.append(b"some text")
    return ex.SerializeToString()


@pytest.fixture(scope="module")
def embeddings_artifact(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("embeddings"))
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(N, E)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    split_dir = os.path.join(root, f"Split-{features.SPLIT_ALL}")
    os.makedirs(split_dir)
    records = [_example(f"item{i}".encode(), emb[i]) for i in range(N)]
    for part, chunk in enumerate((records[:200], records[200:])):
        with tf.io.TFRecordWriter(os.path.join(split_dir, f"data_tfrecord-{part:05d}-of-00002.gz"),
                                  "GZIP") as w:
            for r in chunk:
                w.write(r)
    art = standard_artifacts.Examples()
    art.uri = root
    art.split_names = artifact_utils.encode_split_names([features.SPLIT_ALL])
    examples_utils.set_payload_format(art, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
    return art, emb, records


def _fn_args(art, out_dir, with_accessor=True, custom_config=CUSTOM_CONFIG):
    accessor = None
    if with_accessor:
        accessor = fn_args_utils.DataAccessor(
            tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([art], []),
            record_batch_factory=None, data_view_decode_fn=None)
    return tfx.components.FnArgs(
        working_dir=out_dir,
        train_files=[os.path.join(art.uri, f"Split-{features.SPLIT_ALL}", "*")],
        eval_files=[],
        serving_model_dir=os.path.join(out_dir, "serving"),
        model_run_dir=os.path.join(out_dir, "run"),
        data_accessor=accessor,
        custom_config=dict(custom_config))


@pytest.fixture(scope="module")
def exported(embeddings_artifact, tmp_path_factory):
    art, emb, records = embeddings_artifact
    out = str(tmp_path_factory.mktemp("trainer"))
    fn_args = _fn_args(art, out)
    trainer_module.run_fn(fn_args)
    return fn_args, emb, records


def test_run_fn_writes_summary_and_config(exported):
    fn_args, _, _ = exported
    with open(os.path.join(fn_args.model_run_dir, trainer_module.SUMMARY_FILE)) as f:
        summary = json.load(f)
    assert summary["num_items"] == N and summary["embedding_dim"] == E
    assert len(summary["losses_per_epoch"]["loss"]) == CUSTOM_CONFIG["epochs"]
    assert len(summary["utilisation_per_level"]) == CUSTOM_CONFIG["num_levels"]
    for key in ("final_reconstruction_mse", "seconds", "seconds_per_epoch"):
        assert summary[key] > 0
    with open(os.path.join(fn_args.serving_model_dir, "assets.extra",
                           export_lib.CONFIG_FILE)) as f:
        cfg = json.load(f)
    assert cfg["num_levels"] == 3 and cfg["codebook_size"] == 8 and cfg["embedding_dim"] == E


def test_exported_signatures_agree(exported):
    fn_args, emb, records = exported
    loaded = tf.saved_model.load(fn_args.serving_model_dir)
    assert set(loaded.signatures) == {features.RQVAE_SERVING_SIGNATURE,
                                      features.RQVAE_ENCODE_SIGNATURE}
    serve = loaded.signatures[features.RQVAE_SERVING_SIGNATURE]
    encode = loaded.signatures[features.RQVAE_ENCODE_SIGNATURE]
    # input names and specs
    assert set(serve.structured_input_signature[1]) == {features.RQVAE_EXAMPLES_INPUT}
    spec = encode.structured_input_signature[1][features.RQVAE_EMBEDDING_INPUT]
    assert spec.shape.as_list() == [None, E] and spec.dtype == tf.float32
    a = serve(**{features.RQVAE_EXAMPLES_INPUT: tf.constant(records)})
    b = encode(**{features.RQVAE_EMBEDDING_INPUT: tf.constant(emb)})
    assert set(a) == set(b) == {features.RQVAE_CODES_OUTPUT,
                                features.RQVAE_RECONSTRUCTION_ERROR_OUTPUT}
    codes = a[features.RQVAE_CODES_OUTPUT]
    assert codes.dtype == tf.int64 and codes.shape == (N, 3)
    assert a[features.RQVAE_RECONSTRUCTION_ERROR_OUTPUT].dtype == tf.float32
    assert a[features.RQVAE_RECONSTRUCTION_ERROR_OUTPUT].shape == (N,)
    np.testing.assert_array_equal(codes.numpy(), b[features.RQVAE_CODES_OUTPUT].numpy())
    np.testing.assert_allclose(a[features.RQVAE_RECONSTRUCTION_ERROR_OUTPUT].numpy(),
                               b[features.RQVAE_RECONSTRUCTION_ERROR_OUTPUT].numpy(), rtol=1e-5)
    # the codebooks travel as variables
    assert [tuple(cb.shape) for cb in loaded.codebooks] == [(8, 8)] * 3
    # deterministic
    np.testing.assert_array_equal(
        encode(**{features.RQVAE_EMBEDDING_INPUT: tf.constant(emb)})[
            features.RQVAE_CODES_OUTPUT].numpy(), codes.numpy())


def test_run_fn_without_data_accessor_reads_tfrecords(embeddings_artifact, tmp_path):
    art, emb, _ = embeddings_artifact
    cc = dict(CUSTOM_CONFIG, epochs=1)
    fn_args = _fn_args(art, str(tmp_path), with_accessor=False, custom_config=cc)
    trainer_module.run_fn(fn_args)
    loaded = tf.saved_model.load(fn_args.serving_model_dir)
    out = loaded.signatures[features.RQVAE_ENCODE_SIGNATURE](
        **{features.RQVAE_EMBEDDING_INPUT: tf.constant(emb[:5])})
    assert out[features.RQVAE_CODES_OUTPUT].shape == (5, 3)


def test_load_embeddings_and_schema(embeddings_artifact):
    art, emb, _ = embeddings_artifact
    pattern = [os.path.join(art.uri, f"Split-{features.SPLIT_ALL}", "*")]
    assert trainer_module.peek_embedding_dim(pattern) == E
    ids, got = trainer_module.load_embeddings(pattern, E)
    order = np.argsort([int(i[4:]) for i in ids])
    np.testing.assert_allclose(got[order], emb)
    schema = trainer_module.embeddings_schema(E)
    assert {f.name for f in schema.feature} == {features.ITEM_ID, features.ITEM_EMBEDDING}


def test_config_keys_with_or_without_prefix():
    from models.rqvae.config import RqVaeConfig
    a = RqVaeConfig.from_custom_config({"num_levels": 2, "rqvae_codebook_size": "16",
                                        "hidden_units": [32, 16], "unrelated": 1})
    assert a.num_levels == 2 and a.codebook_size == 16 and a.hidden_units == (32, 16)
    d = RqVaeConfig.from_custom_config(None)
    assert (d.num_levels, d.codebook_size, d.latent_dim, d.hidden_units, d.beta, d.epochs,
            d.batch_size, d.learning_rate, d.dead_code_window) == \
        (4, 64, 64, (), 0.25, 200, 256, 1e-3, 20)


def test_a_catalog_above_max_train_items_trains_on_a_seeded_sample(embeddings_artifact, tmp_path):
    art, emb, _ = embeddings_artifact
    pattern = [os.path.join(art.uri, f"Split-{features.SPLIT_ALL}", "*")]
    assert trainer_module.count_records(pattern, E) == N
    ids, got = trainer_module.load_sample(pattern, E, N, 100, seed=0)
    assert len(ids) == 100 and list(ids) == sorted(ids)
    rows = [int(i[4:]) for i in ids]
    np.testing.assert_allclose(got, emb[rows])
    # The same sample whatever the file order; another seed, another sample.
    reversed_ids, _ = trainer_module.load_sample(pattern[::-1], E, N, 100, seed=0)
    assert list(reversed_ids) == list(ids)
    assert list(trainer_module.load_sample(pattern, E, N, 100, seed=1)[0]) != list(ids)

    fn_args = _fn_args(art, str(tmp_path), custom_config=dict(CUSTOM_CONFIG, max_train_items=100))
    trainer_module.run_fn(fn_args)
    with open(os.path.join(fn_args.model_run_dir, trainer_module.SUMMARY_FILE)) as f:
        summary = json.load(f)
    assert (summary["num_items"], summary["catalog_items"], summary["sampled"]) == (100, N, True)
