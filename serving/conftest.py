"""Shared fixtures of the serving tests: tiny SavedModels (serving/testing.py) and one server
(REST + gRPC on 127.0.0.1, free ports) over a base path with versions 1 and 2 and labels."""
import os
import shutil

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BIASES = {"a": 0.0, "b": 1.0, "c": 2.0}
SERVER_MAX_BODY_BYTES = 256 * 1024  # small, so oversized bodies are cheap to send


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """{"a": dir, "b": dir, "c": dir}: the tiny model with three biases; "a" has warm-up
    requests."""
    from serving.testing import write_tiny_model
    root = tmp_path_factory.mktemp("tiny-models")
    return {k: write_tiny_model(str(root / k), bias=b, warmup=(k == "a"))
            for k, b in BIASES.items()}


@pytest.fixture(scope="session")
def in_process(tiny_models):
    """{"a": loaded SavedModel, ...}: the reference the servers must match."""
    import tensorflow as tf
    return {k: tf.saved_model.load(path) for k, path in tiny_models.items()}


class Served:
    def __init__(self, server, base):
        self.server = server
        self.base = base
        self.registry = server.registry
        self.rest_url = f"http://127.0.0.1:{server.rest_api_port}"
        self.grpc_target = f"127.0.0.1:{server.port}"


@pytest.fixture(scope="session")
def served(tiny_models, tmp_path_factory):
    """A server on versions 1 (model a) and 2 (model b); labels stable -> 1, canary -> 2."""
    from serving.server import ModelServer
    from serving.testing import free_port
    base = tmp_path_factory.mktemp("serving-base")
    shutil.copytree(tiny_models["a"], base / "1")
    shutil.copytree(tiny_models["b"], base / "2")
    config = base.parent / "models.config"
    config.write_text('model_config_list { config { name: "semids" model_platform: "tensorflow"\n'
                      '  version_labels { key: "stable" value: 1 }\n'
                      '  version_labels { key: "canary" value: 2 } } }\n')
    server = ModelServer(str(base), "semids", port=free_port(), rest_api_port=free_port(),
                         host="127.0.0.1", model_config_file=str(config),
                         file_system_poll_wait_seconds=0.5,
                         max_body_bytes=SERVER_MAX_BODY_BYTES).start()
    yield Served(server, str(base))
    server.stop()


def instance(user="42", item="7", history=("1", "5"), labels=(1, 0), H=5):
    history = list(history)[:H]
    labels = list(labels)[:H]
    return {"user_id": user, "item_id": item,
            "history": history + [""] * (H - len(history)),
            "history_labels": labels + [0] * (H - len(labels))}


def reference_scores(model, instances, signature="serving_default"):
    """In-process scores of a loaded model for row-format instances."""
    import numpy as np
    import tensorflow as tf
    fn = model.signatures[signature]
    _, specs = fn.structured_input_signature
    inputs = {k: tf.constant(np.array([i[k] for i in instances]), dtype=specs[k].dtype)
              for k in specs}
    return fn(**inputs)["score"].numpy()
