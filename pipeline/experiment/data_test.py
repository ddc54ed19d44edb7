"""The experiment's inputs: which features a run reads (the model's one mapping) and artifact
paths through TFX's utilities and tf.io.gfile (checked on TF's in-memory ram:// file system,
which Python's open / glob cannot read, as they cannot read gs://)."""
import os
import uuid

import pytest
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.types import artifact_utils, standard_artifacts

from models.ranking import representations
from pipeline import mlmd
from pipeline.experiment import data
from schemas import features


def test_run_features_are_the_label_and_the_models_inputs():
    for rep in features.REPRESENTATIONS:
        for use_history in (True, False):
            names = data.run_features(rep, 512, use_history)
            assert names == (data.LABEL,) + representations.model_input_keys(rep, 512, use_history)
        assert set(data.run_features(rep, 512, False)) < set(data.run_features(rep, 512, True))
    assert features.history_spm_pieces(1024) in data.run_features(features.SID_SPM, 1024, True)
    with pytest.raises(ValueError, match="unknown representation"):
        data.run_features("nope", 512, True)


@pytest.fixture
def ram_root():
    root = f"ram://bucket-{uuid.uuid4().hex[:8]}/experiment"
    yield root
    if tf.io.gfile.exists(root):
        tf.io.gfile.rmtree(root)


def _examples(uri):
    examples = standard_artifacts.Examples()
    examples.uri = uri
    examples.split_names = artifact_utils.encode_split_names(list(features.SPLITS))
    return examples


def test_split_files_follow_tfxs_layout_through_gfile(ram_root):
    examples = _examples(f"{ram_root}/Transform/transformed_examples/7")
    eval_dir = artifact_utils.get_split_uri([examples], features.EVAL)
    tf.io.gfile.makedirs(eval_dir)
    for name in ("data-1.gz", "data-0.gz"):
        with tf.io.gfile.GFile(os.path.join(eval_dir, name), "wb") as f:
            f.write(b"x")
    assert data.split_files(examples, features.EVAL) == [os.path.join(eval_dir, "data-0.gz"),
                                                          os.path.join(eval_dir, "data-1.gz")]
    with pytest.raises(RuntimeError, match="no examples for split 'train'"):
        data.split_files(examples, features.TRAIN)
    with pytest.raises(ValueError, match="Split does not exist"):
        data.split_files(examples, "nope")


def test_base_run_reads_mlmd_artifacts_as_tfx_artifacts():
    cfg = metadata_store_pb2.ConnectionConfig()
    cfg.fake_database.SetInParent()
    store = metadata_store.MetadataStore(cfg)
    written = _examples("/a/Transform/transformed_examples/7")
    [type_id] = [store.put_artifact_type(written.artifact_type)]
    proto = written.mlmd_artifact
    proto.type_id = type_id
    [proto.id] = store.put_artifacts([proto])
    [stored] = store.get_artifacts_by_id([proto.id])

    examples = mlmd.tfx_artifact(store, stored)
    assert isinstance(examples, standard_artifacts.Examples)
    assert artifact_utils.get_split_uri([examples], features.VALIDATION) == (
        "/a/Transform/transformed_examples/7/Split-validation")

    base = data.BaseRun(config=None, metrics={}, transformed_examples=examples,
                        raw_examples=examples, transform_graph_uri="/a/g",
                        trainer_model_uri="/a/Trainer/model/9", evaluation_uri="/a/e")
    assert base.transformed_examples_uri == "/a/Transform/transformed_examples/7"
    assert base.serving_model_dir == "/a/Trainer/model/9/Format-Serving"
