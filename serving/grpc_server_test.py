"""TF Serving's gRPC API (tensorflow-serving-api stubs, as a TF Serving client would use them)."""
import random

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

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
                      (_request(good, label="nope"), grpc.StatusCode.INVALID_ARGUMENT),
                      (_request(good, signature="nope"), grpc.StatusCode.INVALID_ARGUMENT),
                      (bad_dtype, grpc.StatusCode.INVALID_ARGUMENT),
                      (short, grpc.StatusCode.INVALID_ARGUMENT),
                      (missing, grpc.StatusCode.INVALID_ARGUMENT)):
        with pytest.raises(grpc.RpcError) as err:
            stub.Predict(req, timeout=30)
        assert err.value.code() == code, (err.value.code(), err.value.details())
        assert err.value.details()
    assert stub.Predict(_request(good), timeout=30).outputs["score"].float_val


# --- fuzz ---------------------------------------------------------------------------------------
def _proto(dtype, dims, **values):
    p = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims]))
    for field, vals in values.items():
        if field == "tensor_content":
            p.tensor_content = vals
        else:
            getattr(p, field).extend(vals)
    return p


def _fuzz_requests(n, seed=4321, H=5):
    """`n` malformed PredictRequests (each under 4 MB), invalid by design: wrong dtypes, shapes,
    negative and huge declared dimensions, wrong and missing inputs, a wrong signature."""
    rng = random.Random(seed)
    keys = ("user_id", "item_id", "history", "history_labels")

    def good(rows=None):
        rows = rows or rng.randint(1, 4)
        return _request([instance(user=str(rng.randint(1, 900)), item=str(rng.randint(1, 900)),
                                  history=[str(rng.randint(1, 900))], labels=[rng.randint(0, 1)],
                                  H=H) for _ in range(rows)])

    def wrong_dtype():
        req, key = good(1), rng.choice(keys)
        req.inputs[key].CopyFrom(rng.choice([
            _proto(types_pb2.DT_FLOAT, [1, H] if key.startswith("history") else [1],
                   float_val=[1.5]),
            _proto(types_pb2.DT_INT32, [1], int_val=[3]),
            _proto(types_pb2.DT_BOOL, [1], bool_val=[True]),
            _proto(types_pb2.DT_STRING, [1, H], string_val=[b"1"] * H),
            _proto(types_pb2.DT_COMPLEX64, [1], scomplex_val=[1.0, 2.0]),
            _proto(types_pb2.DT_RESOURCE, [1])]))
        return req

    def wrong_shape():
        req, key = good(2), rng.choice(keys)
        dims = rng.choice([[], [3], [2, H + 1], [2, 1, 1], [0], [2, 0], [1, H, 2]])
        size = int(np.prod(dims)) if dims else 1
        if key == "history_labels":
            proto = _proto(types_pb2.DT_INT64, dims, int64_val=[0] * size)
        else:
            proto = _proto(types_pb2.DT_STRING, dims, string_val=[b"7"] * size)
        req.inputs[key].CopyFrom(proto)
        return req

    def negative_dim():
        req, key = good(1), rng.choice(keys)
        dims = rng.choice([[-1], [1, -5], [-1, H], [-2 ** 40]])
        if key == "history_labels":
            proto = _proto(types_pb2.DT_INT64, dims, int64_val=[1] * rng.randint(0, 5))
        else:
            proto = _proto(types_pb2.DT_STRING, dims, string_val=[b"1"] * rng.randint(0, 5))
        req.inputs[key].CopyFrom(proto)
        return req

    def huge_declared_shape():
        # a few bytes that declare up to 2^62 elements
        req, key = good(1), rng.choice(keys)
        big = rng.choice([[2 ** 31, H], [1, 2 ** 40], [2 ** 62], [2 ** 20, 2 ** 20], [10 ** 7, H]])
        if key == "history_labels":
            proto = rng.choice([_proto(types_pb2.DT_INT64, big),
                                _proto(types_pb2.DT_INT64, big, int64_val=[1]),
                                _proto(types_pb2.DT_INT64, big, tensor_content=b"\0" * 64)])
        else:
            proto = rng.choice([_proto(types_pb2.DT_STRING, big),
                                _proto(types_pb2.DT_STRING, big, string_val=[b"x"])])
        req.inputs[key].CopyFrom(proto)
        return req

    def too_many_values():
        req, key = good(1), rng.choice(("user_id", "item_id"))
        req.inputs[key].CopyFrom(_proto(types_pb2.DT_STRING, [1], string_val=[b"1", b"2", b"3"]))
        return req

    def bad_content():
        req = good(1)
        req.inputs["history_labels"].CopyFrom(_proto(
            types_pb2.DT_INT64, [1, H], tensor_content=bytes(rng.randrange(256) for _ in
                                                             range(rng.choice([3, 8, 41, 100])))))
        return req

    def missing_or_extra():
        req = good()
        if rng.random() < 0.5:
            del req.inputs[rng.choice(keys)]
        else:
            req.inputs[rng.choice(["extra", "", "history ", "USER_ID"])].CopyFrom(
                tf.make_tensor_proto(["1"]))
        return req

    def wrong_signature():
        req = good()
        req.model_spec.signature_name = rng.choice(["nope", "serving_tf_example", "serving_by_sid",
                                                    "__saved_model_init_op", "SERVING_DEFAULT"])
        return req

    def batch_mismatch():
        req = good(3)
        req.inputs[rng.choice(keys)].CopyFrom(
            _request([instance(H=H)] * 2).inputs[rng.choice(keys)])
        return req

    def big_message():
        req = good(1)
        req.inputs["user_id"].CopyFrom(_proto(types_pb2.DT_STRING, [1],
                                              string_val=[b"u" * rng.randint(10 ** 5, 3 * 10 ** 6)]))
        req.inputs["history_labels"].CopyFrom(_proto(types_pb2.DT_INT64, [1, 3], int64_val=[1] * 3))
        return req

    gens = [wrong_dtype, wrong_shape, negative_dim, huge_declared_shape, too_many_values,
            bad_content, missing_or_extra, wrong_signature, batch_mismatch, big_message]
    out = [rng.choice(gens)() for _ in range(n)]
    assert all(r.ByteSize() <= 4 * 1024 * 1024 for r in out)
    return out


def test_fuzz_malformed_requests_get_invalid_argument(channel, in_process):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    codes = {}
    for req in _fuzz_requests(600):
        with pytest.raises(grpc.RpcError) as err:
            stub.Predict(req, timeout=30)
        code = err.value.code()
        codes[code.name] = codes.get(code.name, 0) + 1
        assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), \
            (code, err.value.details(), str(req)[:300])
        assert err.value.details()
    assert set(codes) == {"INVALID_ARGUMENT"}, codes
    instances = [instance(user="3", item="4", history=["5"], labels=[1])]
    resp = stub.Predict(_request(instances), timeout=30)  # the server still answers
    np.testing.assert_allclose(tf.make_ndarray(resp.outputs["score"]),
                               reference_scores(in_process["b"], instances), atol=1e-5)
