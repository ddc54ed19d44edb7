"""semids models: the RQ-VAE (rqvae/), the TFRS ranking model (ranking/), Semantic-ID symbols
(sid/) and the content encoder.

TFRS needs Keras 2 (tf-keras). TensorFlow picks its Keras when something first touches `tf.keras`,
which importing TFX or TFMA already does, from the environment variable TF_USE_LEGACY_KERAS.
`use_legacy_keras` below is the one place that sets it. It runs when `models` is imported, and
every entry point imports `models` before TensorFlow: the `semids` CLI and the TFX CLI route (via
pipeline/__init__.py), pytest (the root conftest.py) and the benchmarks. Outside those, import
`models` first, or export TF_USE_LEGACY_KERAS=1 (the Dockerfile does, for Vertex AI).
"""
import os
import sys
import types


def use_legacy_keras() -> None:
    """Sets TF_USE_LEGACY_KERAS=1 for this process; fails with what to do when TensorFlow has
    already settled on Keras 3 (TFRS models would then fail far from the cause)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    tf = sys.modules.get("tensorflow")
    keras = vars(tf).get("keras") if tf is not None else None
    # TensorFlow's lazy loader replaces itself with the Keras module it resolved on first use.
    if isinstance(keras, types.ModuleType) and not keras.__name__.startswith("tf_keras"):
        raise RuntimeError(
            "TensorFlow already resolved tf.keras to Keras 3 before TF_USE_LEGACY_KERAS=1 was "
            "set; TFRS needs Keras 2: import `models` before TensorFlow, or export "
            "TF_USE_LEGACY_KERAS=1")


use_legacy_keras()
