"""TF Serving's warm-up file: written from the signatures, replayed before AVAILABLE."""
import os
import shutil

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from serving.model_registry import ModelRegistry
from models.ranking.warmup import write_warmup_requests


def test_write_and_replay_warmup_requests(tiny_models, tmp_path):
    model = tmp_path / "1"
    shutil.copytree(tiny_models["b"], model)
    path = write_warmup_requests(str(model), num_requests=3)
    assert path == os.path.join(str(model), "assets.extra", "tf_serving_warmup_requests")
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(path)]
    assert [entry.WhichOneof("log_type") for entry in logs] == \
        ["predict_log"] * 4 + ["regress_log", "classify_log"]
    assert [entry.predict_log.request.model_spec.signature_name for entry in logs[:4]] == \
        ["serving_default"] * 3 + ["serving_by_sid"]
    assert logs[4].regress_log.request.model_spec.signature_name == "regress"
    assert len(logs[5].classify_log.request.input.example_list.examples) == 1
    req = logs[1].predict_log.request
    history = tf.make_ndarray(req.inputs["history"])
    assert history.shape == (10, 5) and history[0, -1] == b""  # H read from the signature
    assert tf.make_ndarray(req.inputs["history_labels"]).dtype == "int64"
    assert tf.make_ndarray(logs[3].predict_log.request.inputs["semantic_id"]).shape == (1, 3)
    reg = ModelRegistry(str(tmp_path), "semids", poll_interval_s=60)
    reg.refresh()
    assert reg.get().warmup_requests_replayed == 6
    assert reg.status()["model_version_status"][0]["state"] == "AVAILABLE"


def test_failing_warmup_fails_the_load(tiny_models, tmp_path):
    from tensorflow_serving.apis import predict_pb2
    model = tmp_path / "1"
    shutil.copytree(tiny_models["b"], model)
    os.makedirs(model / "assets.extra")
    bad = predict_pb2.PredictRequest()
    bad.inputs["user_id"].CopyFrom(tf.make_tensor_proto(["1"]))  # the other inputs missing
    with tf.io.TFRecordWriter(str(model / "assets.extra" / "tf_serving_warmup_requests")) as w:
        w.write(prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=bad)).SerializeToString())
    reg = ModelRegistry(str(tmp_path), "semids", poll_interval_s=60)
    reg.refresh()
    assert reg.versions() == []
    status = reg.status()["model_version_status"][0]
    assert status["state"] == "END" and "missing input(s)" in status["status"]["error_message"]
