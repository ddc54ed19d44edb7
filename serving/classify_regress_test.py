"""TF Serving's :classify and :regress over REST and gRPC (and SemidsClient's), against the test
server's tiny model: the same scores as serving_default, and TF Serving's errors."""
import json

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (classification_pb2, input_pb2, prediction_service_pb2_grpc,
                                     regression_pb2)

from serving import classify_regress
from serving.client import SemidsClient
from serving.conftest import instance, reference_scores
from schemas.features import CLASSIFY_SIGNATURE, REGRESS_SIGNATURE

INSTANCES = [instance(user=str(u), item=str(50 + 3 * u), history=[str(u + 1), str(u + 9)],
                      labels=[u % 2, 1]) for u in range(7)]


def _examples(instances, context_keys=()):
    """(JSON examples, JSON context): the context holds `context_keys`, shared by every row."""
    examples = [{k: v for k, v in i.items() if k not in context_keys} for i in instances]
    context = {k: instances[0][k] for k in context_keys}
    return examples, context


def _example_proto(features: dict) -> tf.train.Example:
    feats = {}
    for k, v in features.items():
        vals = v if isinstance(v, list) else [v]
        if all(isinstance(x, str) for x in vals):
            feats[k] = tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[x.encode() for x in vals]))
        else:
            feats[k] = tf.train.Feature(int64_list=tf.train.Int64List(value=vals))
    return tf.train.Example(features=tf.train.Features(feature=feats))


@pytest.fixture(scope="module")
def want(in_process):
    return reference_scores(in_process["b"], INSTANCES)


@pytest.mark.parametrize("context_keys", [(), ("user_id", "history", "history_labels")])
def test_rest_regress_and_classify_equal_serving_default(served, want, context_keys):
    instances = INSTANCES if not context_keys else [dict(i, **{k: INSTANCES[0][k] for k in
                                                               context_keys}) for i in INSTANCES]
    examples, context = _examples(instances, context_keys)
    body = {"examples": examples, **({"context": context} if context else {})}
    want_here = want if not context_keys else None
    with httpx.Client(base_url=served.rest_url, timeout=30) as http:
        r = http.post("/v1/models/semids:regress", json=dict(body, signature_name=REGRESS_SIGNATURE))
        assert r.status_code == 200, r.text
        regressed = np.array(r.json()["results"])
        r = http.post("/v1/models/semids/versions/2:classify",
                      json=dict(body, signature_name=CLASSIFY_SIGNATURE))
        assert r.status_code == 200, r.text
        classified = r.json()["results"]
        predicted = np.array(http.post("/v1/models/semids:predict",
                                       json={"instances": instances}).json()["predictions"])
    if want_here is not None:
        np.testing.assert_allclose(predicted, want_here, atol=1e-6)
    np.testing.assert_allclose(regressed, predicted, atol=1e-6)
    assert [[c[0] for c in row] for row in classified] == [["0", "1"]] * len(instances)
    np.testing.assert_allclose([row[1][1] for row in classified], predicted, atol=1e-6)
    np.testing.assert_allclose([row[0][1] for row in classified], 1 - predicted, atol=1e-6)


def test_grpc_regress_and_classify_equal_serving_default(served, want):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(
        grpc.insecure_channel(served.grpc_target))
    examples = [_example_proto(i) for i in INSTANCES]
    req = regression_pb2.RegressionRequest()
    req.model_spec.name, req.model_spec.signature_name = "semids", REGRESS_SIGNATURE
    req.input.example_list.examples.extend(examples)
    resp = stub.Regress(req, timeout=30)
    assert resp.model_spec.signature_name == REGRESS_SIGNATURE
    np.testing.assert_allclose([r.value for r in resp.result.regressions], want, atol=1e-6)

    req = classification_pb2.ClassificationRequest()
    req.model_spec.name, req.model_spec.signature_name = "semids", CLASSIFY_SIGNATURE
    shared = ("history", "history_labels")
    lwc = req.input.example_list_with_context
    lwc.context.CopyFrom(_example_proto({k: INSTANCES[0][k] for k in shared}))
    same_history = [dict(i, **{k: INSTANCES[0][k] for k in shared}) for i in INSTANCES]
    lwc.examples.extend(_example_proto({k: v for k, v in i.items() if k not in shared})
                        for i in same_history)
    resp = stub.Classify(req, timeout=30)
    got = [[(c.label, c.score) for c in row.classes] for row in resp.result.classifications]
    want_same = reference_scores(served_model(served), same_history)
    assert [[label for label, _ in row] for row in got] == [["0", "1"]] * len(INSTANCES)
    np.testing.assert_allclose([row[1][1] for row in got], want_same, atol=1e-6)

    # Without a signature_name the call reaches serving_default: TF Serving's error.
    req.model_spec.signature_name = ""
    with pytest.raises(grpc.RpcError) as err:
        stub.Classify(req, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Expected one input Tensor" in err.value.details()
    empty = regression_pb2.RegressionRequest(input=input_pb2.Input())
    empty.model_spec.name, empty.model_spec.signature_name = "semids", REGRESS_SIGNATURE
    with pytest.raises(grpc.RpcError) as err:
        stub.Regress(empty, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def served_model(served):
    """The newest version's loaded model, as the server holds it."""
    return served.registry.get().loaded


def test_client_regress_and_classify(served, want):
    examples, _ = _examples(INSTANCES)
    with SemidsClient(served.rest_url) as client:
        np.testing.assert_allclose(client.regress(examples), want, atol=1e-6)
        rows = client.classify(examples)
    np.testing.assert_allclose([row[1][1] for row in rows], want, atol=1e-6)


@pytest.mark.parametrize("body,message", [
    ({"examples": [{"user_id": "1"}]}, "Expected one input Tensor"),  # serving_default
    ({"signature_name": "serving_tf_example", "examples": [{"user_id": "1"}]},
     "No regression inputs"),
    ({"signature_name": REGRESS_SIGNATURE, "examples": []}, "empty array"),
    ({"signature_name": REGRESS_SIGNATURE}, "'examples' is expected"),
    ({"signature_name": REGRESS_SIGNATURE, "examples": {"a": 1}}, "list/array"),
    ({"signature_name": REGRESS_SIGNATURE, "examples": [[1]]}, "JSON object"),
    ({"signature_name": REGRESS_SIGNATURE, "examples": [{"user_id": ["a", 1]}]},
     "Unexpected element type"),
    ({"signature_name": REGRESS_SIGNATURE, "examples": [{"user_id": None}]}, "unexpected JSON"),
    ({"signature_name": REGRESS_SIGNATURE, "examples": [{"user_id": "\ud800"}]}, "not valid Unicode"),
    ({"signature_name": REGRESS_SIGNATURE, "examples": [{"user_id": "1"}]}, "rejected the request"),
    ({"signature_name": "nope", "examples": [{"user_id": "1"}]}, "nope"),
])
def test_rest_regress_errors_are_tf_servings_400s(served, body, message):
    with httpx.Client(base_url=served.rest_url, timeout=30) as http:
        # json.dumps escapes a lone surrogate ("\ud800"), which httpx's own encoder refuses
        r = http.post("/v1/models/semids:regress", content=json.dumps(body).encode(),
                      headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert message in r.json()["error"], r.json()


def test_examples_from_json_merge_the_context_under_each_example():
    serialized = classify_regress.examples_from_json(
        {"context": {"user_id": "7", "history_labels": [1, 0]},
         "examples": [{"item_id": "a"}, {"item_id": {"b64": "Yg=="}, "user_id": "8"}]})
    parsed = [tf.train.Example.FromString(s).features.feature for s in serialized]
    assert [p["item_id"].bytes_list.value[0] for p in parsed] == [b"a", b"b"]
    assert [p["user_id"].bytes_list.value[0] for p in parsed] == [b"7", b"8"]  # example wins
    assert list(parsed[0]["history_labels"].int64_list.value) == [1, 0]
