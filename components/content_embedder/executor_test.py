"""Runs the ContentEmbedder executor (DirectRunner) on tiny hand-made items splits, and the
component under LocalDagRunner behind two Importers (items Examples + ContentEncoder)."""
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx import v1 as tfx
from tfx.types import artifact_utils, channel_utils, standard_artifacts

from components.artifacts import ContentEncoder
from components.content_embedder import core
from components.content_embedder.component import ContentEmbedder
from components.content_embedder.executor import (EMBEDDINGS_KEY, ENCODER_KEY, ITEMS_KEY,
                                                  Executor)
from components.testing import write_examples_artifact
from models.content_encoder import MiniLmEncoder, prepare_encoder_dir
from schemas import features

ITEMS = [
    ("1", "Toy Story", "1995", "Animation Children's Comedy"),
    ("2", "GoldenEye", "1995", "Action Adventure Thriller"),
    ("3", "Four Rooms", "1995", "Thriller"),
    ("007", "Get Shorty", "", "Action Comedy Drama"),
    ("5", "Copycat", "1995", ""),
    ("6", "Shanghai Triad (Yao a yao yao dao waipo qiao)", "1995", "Drama"),
    ("7", "Twelve Monkeys", "1995", "Drama Sci-Fi"),
]
EXPECTED_TEXT = {b"1": "Toy Story 1995 Animation Children's Comedy",
                 b"007": "Get Shorty Action Comedy Drama", b"5": "Copycat 1995"}


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return prepare_encoder_dir(str(tmp_path_factory.mktemp("encoder")))


def _item_example(item_id, title, year, genres, embedding=None):
    ex = tf.train.Example()
    f = ex.features.feature
    for name, value in ((features.ITEM_ID, item_id), ("title", title), ("year", year),
                        ("genres", genres)):
        f[name].bytes_list.value.append(value.encode())
    if embedding is not None:
        f[features.ITEM_EMBEDDING].float_list.value.extend(embedding)
    return ex


def _write_items(uri, examples):
    """An Examples artifact at `uri` with split `all` in two gzipped shards."""
    return write_examples_artifact(uri, {features.SPLIT_ALL: examples})


def _run(tmp_path, name, examples, encoder_dir=None, text_fields=None, batch_size=3,
         **exec_extra):
    items = _write_items(str(tmp_path / name / "items"), examples)
    inputs = {ITEMS_KEY: [items]}
    if encoder_dir:
        enc = ContentEncoder()
        enc.uri = encoder_dir
        inputs[ENCODER_KEY] = [enc]
    out = standard_artifacts.Examples()
    out.uri = str(tmp_path / name / "embeddings")
    os.makedirs(out.uri)
    Executor().Do(inputs, {EMBEDDINGS_KEY: [out]}, {
        core.TEXT_FIELDS_KEY: core.encode_text_fields(text_fields),
        core.BATCH_SIZE_KEY: batch_size, **exec_extra})
    return out


def _read(out):
    assert artifact_utils.decode_split_names(out.split_names) == [features.SPLIT_ALL]
    files = glob.glob(os.path.join(artifact_utils.get_split_uri([out], features.SPLIT_ALL),
                                   "data_tfrecord-*.gz"))
    assert files
    got = {}
    for rec in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        f = tf.train.Example.FromString(rec.numpy()).features.feature
        assert set(f) == {features.ITEM_ID, features.ITEM_EMBEDDING, features.ITEM_TEXT}
        item_id = f[features.ITEM_ID].bytes_list.value[0]
        assert item_id not in got
        got[item_id] = (np.array(f[features.ITEM_EMBEDDING].float_list.value, np.float32),
                        f[features.ITEM_TEXT].bytes_list.value[0].decode())
    with open(os.path.join(out.uri, core.SUMMARY_FILE)) as fh:
        return got, json.load(fh)


def test_encoder_path(tmp_path, encoder_dir):
    examples = [_item_example(*row) for row in ITEMS]
    out = _run(tmp_path, "a", examples, encoder_dir)
    got, summary = _read(out)
    assert len(got) == len(ITEMS)
    for item_id, text in EXPECTED_TEXT.items():
        assert got[item_id][1] == text
    vectors = np.stack([v for v, _ in got.values()])
    assert vectors.shape == (len(ITEMS), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # the same vectors as the encoder on its own
    ref = MiniLmEncoder(encoder_dir).encode([got[b"1"][1]])[0]
    np.testing.assert_allclose(got[b"1"][0], ref, atol=1e-5)
    assert summary == {**summary, "num_items": len(ITEMS), "embedding_dim": 384,
                       "source": core.SOURCE_ENCODER, "encoder_uri": encoder_dir,
                       "text_fields": ["title", "year", "genres"], "num_empty_text": 0}
    assert summary["seconds"] > 0

    # deterministic: another run (other batch size, so other batches; two single-threaded
    # calls at once, no spinning) gives the same vectors
    again, _ = _read(_run(tmp_path, "b", examples[::-1], encoder_dir, batch_size=5,
                          **{core.NUM_THREADS_KEY: 1, core.ALLOW_SPINNING_KEY: 0,
                             core.PARALLEL_CALLS_KEY: 2}))
    assert again.keys() == got.keys()
    for item_id in got:
        assert again[item_id][1] == got[item_id][1]
        np.testing.assert_allclose(again[item_id][0], got[item_id][0], atol=1e-6)

    # explicit text fields, in their order
    titles, summary = _read(_run(tmp_path, "c", examples, encoder_dir,
                                 text_fields=["genres", "title"]))
    assert titles[b"1"][1] == "Animation Children's Comedy Toy Story"
    assert summary["text_fields"] == ["genres", "title"]


def test_precomputed_path_skips_the_encoder(tmp_path):
    rnd = np.random.default_rng(0)
    emb = {row[0]: rnd.normal(size=5).astype(np.float32) for row in ITEMS}
    examples = [_item_example(*row, embedding=emb[row[0]]) for row in ITEMS]
    got, summary = _read(_run(tmp_path, "p", examples))  # no encoder channel at all
    assert {k.decode(): v.tolist() for k, (v, _) in got.items()} == \
        {k: v.tolist() for k, v in emb.items()}
    assert got[b"007"][1] == EXPECTED_TEXT[b"007"]
    assert (summary["num_items"], summary["embedding_dim"], summary["source"],
            summary["encoder_uri"]) == (len(ITEMS), 5, core.SOURCE_PRECOMPUTED, None)


@pytest.mark.parametrize("bad,match", [
    ([0.1, 0.2, 0.3], r"item '007'.*dimension 3, expected 5"),
    ([0.1, float("nan"), 0.3, 0.4, 0.5], r"item '007'.*non-finite"),
    (None, r"item '007' lacks an 'embedding'"),
])
def test_bad_precomputed_embedding_raises_naming_the_item(tmp_path, bad, match):
    examples = [_item_example(*row, embedding=[0.5] * 5) for row in ITEMS]
    examples[3] = _item_example(*ITEMS[3], embedding=bad)  # item 007 (not the first read)
    with pytest.raises(Exception, match=match):
        _run(tmp_path, "bad", examples)


def test_missing_encoder_or_items_fail_clearly(tmp_path):
    examples = [_item_example(*row) for row in ITEMS]
    with pytest.raises(ValueError, match="`encoder` input .* is required"):
        _run(tmp_path, "noenc", examples)
    with pytest.raises(FileNotFoundError, match="lacks model.onnx, tokenizer.json"):
        _run(tmp_path, "emptyenc", examples, encoder_dir=str(tmp_path))
    with pytest.raises(ValueError, match="holds no item"):
        _run(tmp_path, "empty", [], encoder_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"\['plot'\] are not text features"):
        _run(tmp_path, "plot", examples, encoder_dir=str(tmp_path), text_fields=["plot"])


def test_component_wiring():
    items = channel_utils.as_channel([standard_artifacts.Examples()])
    encoder = channel_utils.as_channel([ContentEncoder()])
    c = ContentEmbedder(items=items, encoder=encoder, text_fields=["title", "genres"],
                        batch_size=16)
    assert c.outputs[EMBEDDINGS_KEY].type == standard_artifacts.Examples
    assert c.exec_properties[core.TEXT_FIELDS_KEY] == '["title", "genres"]'
    assert c.exec_properties[core.BATCH_SIZE_KEY] == 16
    assert c.exec_properties.get(core.NUM_THREADS_KEY) is None
    c = ContentEmbedder(items=items, encoder=encoder, num_threads=1, allow_spinning=False,
                        parallel_calls=2)
    assert c.exec_properties[core.BATCH_SIZE_KEY] == core.DEFAULT_BATCH_SIZE
    assert (c.exec_properties[core.NUM_THREADS_KEY], c.exec_properties[core.ALLOW_SPINNING_KEY],
            c.exec_properties[core.PARALLEL_CALLS_KEY]) == (1, 0, 2)
    with pytest.raises(ValueError, match="num_threads"):
        ContentEmbedder(items=items, encoder=encoder, num_threads=0)
    with pytest.raises(ValueError, match="parallel_calls"):
        ContentEmbedder(items=items, encoder=encoder, parallel_calls=0)
    c = ContentEmbedder(items=items)  # precomputed embeddings need no encoder
    assert c.exec_properties[core.TEXT_FIELDS_KEY] == ""
    assert ENCODER_KEY not in c.inputs
    with pytest.raises(ValueError, match="batch_size"):
        ContentEmbedder(items=items, encoder=encoder, batch_size=0)


def test_local_dag_runner_with_importers(tmp_path, encoder_dir):
    items_uri = str(tmp_path / "items_artifact")
    _write_items(items_uri, [_item_example(*row) for row in ITEMS])
    items = tfx.dsl.Importer(source_uri=items_uri, artifact_type=standard_artifacts.Examples,
                             properties={"split_names": artifact_utils.encode_split_names(
                                 [features.SPLIT_ALL])}).with_id("items_importer")
    encoder = tfx.dsl.Importer(source_uri=encoder_dir,
                               artifact_type=ContentEncoder).with_id("encoder_importer")
    embedder = ContentEmbedder(items=items.outputs["result"], encoder=encoder.outputs["result"],
                               text_fields=None, batch_size=4)
    root = str(tmp_path / "root")
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name="content-embedder-test", pipeline_root=root,
        components=[items, encoder, embedder],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(tmp_path / "metadata.db"))))
    summaries = glob.glob(os.path.join(root, "ContentEmbedder", EMBEDDINGS_KEY, "*",
                                       core.SUMMARY_FILE))
    assert len(summaries) == 1
    with open(summaries[0]) as f:
        summary = json.load(f)
    assert (summary["num_items"], summary["embedding_dim"], summary["source"]) == \
        (len(ITEMS), 384, core.SOURCE_ENCODER)
    assert summary["encoder_uri"] == encoder_dir
