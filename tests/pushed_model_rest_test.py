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
