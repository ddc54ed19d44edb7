"""TF Serving's gRPC API (tensorflow-serving-api stubs, as a TF Serving client would use them)."""
import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from serving.conftest import instance, reference_scores


@pytest.fixture(scope="module")
def channel(served):
    with grpc.insecure_channel(served.grpc_target) as ch:
        yield ch


def _request(instances, signature="", version=None, label=None, name="semids"):
    req = predict_pb2.PredictRequest()
    req.model_spec.name = name
    req.model_spec.signature_name = signature
    if version is not None:
        req.model_spec.version.value = version
    if label is not None:
        req.model_spec.version_label = label
    for key in instances[0]:
        req.inputs[key].CopyFrom(tf.make_tensor_proto([i[key] for i in instances]))
    return req


def test_predict_equals_in_process(channel, in_process):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    instances = [instance(user=str(u), item=str(100 + u), history=[str(u + 1)], labels=[u % 2])
                 for u in range(6)]
    for kwargs, model, version in (({}, "b", 2), ({"version": 1}, "a", 1),
                                   ({"label": "canary"}, "b", 2)):
        resp = stub.Predict(_request(instances, **kwargs), timeout=30)
        assert resp.model_spec.version.value == version
        assert resp.model_spec.signature_name == "serving_default"
        np.testing.assert_allclose(tf.make_ndarray(resp.outputs["score"]),
                                   reference_scores(in_process[model], instances), atol=1e-5)


def test_metadata_and_status(channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    req = get_model_metadata_pb2.GetModelMetadataRequest()
    req.model_spec.name = "semids"
    req.metadata_field.append("signature_def")
    resp = stub.GetModelMetadata(req, timeout=30)
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    resp.metadata["signature_def"].Unpack(sig_map)
    assert {"serving_default", "serving_tf_example", "serving_by_sid"} <= set(sig_map.signature_def)
    assert resp.model_spec.version.value == 2
    status_req = get_model_status_pb2.GetModelStatusRequest()
    status_req.model_spec.name = "semids"
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status_req, timeout=30)
    assert [(s.version, s.state) for s in status.model_version_status] == [
        (2, get_model_status_pb2.ModelVersionStatus.AVAILABLE),
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]


def test_errors(channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    good = [instance()]
    bad_dtype = _request(good)
    bad_dtype.inputs["history_labels"].CopyFrom(tf.make_tensor_proto([["1"] * 5]))
    short = _request(good)
    short.inputs["history"].CopyFrom(tf.make_tensor_proto([["1"]]))
    missing = _request(good)
    del missing.inputs["item_id"]
    for req, code in ((_request(good, name="other"), grpc.StatusCode.NOT_FOUND),
                      (_request(good, version=9), grpc.StatusCode.NOT_FOUND),
                      (_request(good, label="nope"), grpc.StatusCode.NOT_FOUND),
                      (_request(good, signature="nope"), grpc.StatusCode.NOT_FOUND),
                      (bad_dtype, grpc.StatusCode.INVALID_ARGUMENT),
                      (short, grpc.StatusCode.INVALID_ARGUMENT),
                      (missing, grpc.StatusCode.INVALID_ARGUMENT)):
        with pytest.raises(grpc.RpcError) as err:
            stub.Predict(req, timeout=30)
        assert err.value.code() == code, (err.value.code(), err.value.details())
        assert err.value.details()
    assert stub.Predict(_request(good), timeout=30).outputs["score"].float_val
