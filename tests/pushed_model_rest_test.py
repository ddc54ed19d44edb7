"""The shared e2e run's pushed ranking model behind `semids serve`: REST answers equal the
in-process serving_default call for requests no eval row has (unknown user and item, an empty and
a full history)."""
import os

import httpx
import numpy as np
import pytest

from serving.testing import free_port

pytestmark = pytest.mark.e2e


def test_pushed_model_rest_equals_in_process(e2e_run, tmp_path):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 - SentencePiece ops

    from serving.server import ModelServer
    _, metrics, _ = e2e_run
    pushed = metrics["pushed_model_dir"]
    assert pushed, "the shared e2e run pushed no model"
    base = tmp_path / "base"
    base.mkdir()
    os.symlink(os.path.abspath(pushed), base / "1")  # one version, whatever else gets pushed
    with ModelServer(str(base), port=0, rest_api_port=free_port(), host="127.0.0.1",
                     file_system_poll_wait_seconds=60) as server:
        fn = server.registry.get().signature("serving_default")
        H = fn.inputs["history"].shape[1]
        rows = [{"user_id": str(u), "item_id": str(i),
                 "history": [str(h) for h in range(1, k + 1)] + [""] * (H - k),
                 "history_labels": [h % 2 for h in range(k)] + [0] * (H - k)}
                for u, i, k in ((1, 50, 0), (42, 7, 3), (300, 1000, H), (999999, 424242, 2))]
        r = httpx.post(f"http://127.0.0.1:{server.rest_api_port}/v1/models/semids:predict",
                       json={"instances": rows}, timeout=60)
        assert r.status_code == 200, r.text
        got = r.json()["predictions"]
    loaded = tf.saved_model.load(pushed)  # independent in-process load
    sig = loaded.signatures["serving_default"]
    want = sig(**{k: tf.constant([row[k] for row in rows],
                                 dtype=tf.int64 if k == "history_labels" else tf.string)
                  for k in rows[0]})["score"].numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_pushed_model_regress_and_classify_equal_serving_default(e2e_run, tmp_path):
    """TF Serving's :regress / :classify (REST) and Regress / Classify (gRPC) on the pushed
    model: the same scores as serving_default within 1e-6."""
    import grpc
    from tensorflow_serving.apis import (classification_pb2, prediction_service_pb2_grpc,
                                         regression_pb2)

    from e2e_pipeline_test import _eval_rows, _named_inputs  # tests/ is on sys.path
    from serving.server import ModelServer
    from schemas import features
    config, metrics, _ = e2e_run
    examples = _eval_rows(config, n=20)
    named = _named_inputs(examples, config.history_length)
    rows = [{k: named[k][i] for k in named} for i in range(len(examples))]
    base = tmp_path / "base"
    base.mkdir()
    os.symlink(os.path.abspath(metrics["pushed_model_dir"]), base / "1")
    json_examples = []
    for row in rows:
        present = [j for j, h in enumerate(row["history"]) if h != features.HISTORY_PAD]
        json_examples.append({"user_id": row["user_id"], "item_id": row["item_id"],
                              "history": [row["history"][j] for j in present],
                              "history_labels": [row["history_labels"][j] for j in present]})
    with ModelServer(str(base), port=free_port(), rest_api_port=free_port(), host="127.0.0.1",
                     file_system_poll_wait_seconds=60) as server:
        url = f"http://127.0.0.1:{server.rest_api_port}/v1/models/semids"
        want = np.array(httpx.post(f"{url}:predict", json={"instances": rows},
                                   timeout=60).json()["predictions"])
        r = httpx.post(f"{url}:regress", json={"signature_name": features.REGRESS_SIGNATURE,
                                               "examples": json_examples}, timeout=60)
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(r.json()["results"], want, atol=1e-6)
        r = httpx.post(f"{url}:classify", json={"signature_name": features.CLASSIFY_SIGNATURE,
                                                "examples": json_examples}, timeout=60)
        assert r.status_code == 200, r.text
        assert all([c[0] for c in row] == list(features.CLASSIFY_CLASSES)
                   for row in r.json()["results"])
        np.testing.assert_allclose([row[1][1] for row in r.json()["results"]], want, atol=1e-6)
        r = httpx.post(f"{url}:predict", json={"instances": [dict(rows[0], history_labels=[
            7] + rows[0]["history_labels"][1:])]}, timeout=60)
        assert r.status_code == 400 and "history_labels" in r.json()["error"], r.text

        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{server.port}"))
        req = regression_pb2.RegressionRequest()
        req.model_spec.name, req.model_spec.signature_name = "semids", features.REGRESS_SIGNATURE
        req.input.example_list.examples.extend(examples)
        got = [x.value for x in stub.Regress(req, timeout=60).result.regressions]
        np.testing.assert_allclose(got, want, atol=1e-6)
        req = classification_pb2.ClassificationRequest()
        req.model_spec.name, req.model_spec.signature_name = "semids", features.CLASSIFY_SIGNATURE
        req.input.example_list.examples.extend(examples)
        got = [row.classes[1].score for row in stub.Classify(req, timeout=60).result.classifications]
        np.testing.assert_allclose(got, want, atol=1e-6)
