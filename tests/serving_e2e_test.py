"""Pushed models behind `semids serve`: REST answers equal the in-process serving_default call
(within 1e-5) on real eval rows, each version addressed by number.

The default suite serves the two models the shared e2e runs already pushed (random_hash and
sid_spm: a hash table and the SentencePiece graph); `slow` pushes the other four representations
too (four cached reruns, Trainer onwards: about 140 s on 2 cores)."""
import os

import httpx
import numpy as np
import pytest
import tensorflow as tf

from schemas import features
from e2e_pipeline_test import _eval_rows, _named_inputs  # tests/ is on sys.path (rootless)

pytestmark = pytest.mark.e2e


def test_rest_equals_in_process_for_the_pushed_models(e2e_spm_run, tmp_path):
    config, spm_metrics, first_metrics = e2e_spm_run
    pushed = {features.RANDOM_HASH: first_metrics["pushed_model_dir"],
              features.SID_SPM: spm_metrics["pushed_model_dir"]}
    assert all(pushed.values())
    _check_rest_equals_in_process(config, pushed, tmp_path)


@pytest.mark.slow
def test_rest_equals_in_process_for_every_representation(e2e_all_pushed, tmp_path):
    config, pushed = e2e_all_pushed
    assert set(pushed) == set(features.REPRESENTATIONS) and all(pushed.values())
    _check_rest_equals_in_process(config, pushed, tmp_path)


def _check_rest_equals_in_process(config, pushed, tmp_path):
    import tensorflow_text  # noqa: F401 - SentencePiece ops of the Transform graph

    from serving.server import ModelServer
    from serving.testing import free_port
    base = tmp_path / "base"
    base.mkdir()
    versions = {}
    for number, representation in enumerate(sorted(pushed), start=1):
        os.symlink(os.path.abspath(pushed[representation]), base / str(number))
        versions[representation] = number
    model_config = tmp_path / "models.config"
    model_config.write_text('model_config_list { config { name: "semids" '
                            'model_platform: "tensorflow" model_version_policy { all {} } } }\n')
    named = _named_inputs(_eval_rows(config, n=30), config.history_length)
    rows = [{k: named[k][i] for k in named} for i in range(len(named[features.USER_ID]))]
    with ModelServer(str(base), "semids", port=0, rest_api_port=free_port(), host="127.0.0.1",
                     model_config_file=str(model_config),
                     file_system_poll_wait_seconds=60) as server:
        url = f"http://127.0.0.1:{server.rest_api_port}/v1/models/semids"
        for representation, number in versions.items():
            r = httpx.post(f"{url}/versions/{number}:predict", json={"instances": rows}, timeout=60)
            assert r.status_code == 200, (representation, r.text)
            got = np.array(r.json()["predictions"], dtype=np.float64)
            signature = tf.saved_model.load(pushed[representation]).signatures[
                features.SERVING_DEFAULT_SIGNATURE]
            want = signature(**{k: tf.constant(v, tf.int64 if k == features.HISTORY_LABELS else tf.string)
                                for k, v in named.items()})[features.PREDICTION_KEY].numpy()
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=representation)
