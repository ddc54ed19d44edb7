"""pytest: imported before any test module, so TensorFlow loads Keras 2 (models/__init__.py), and
the fixture every training test uses."""
import pytest

import models  # noqa: F401


def pytest_addoption(parser):
    parser.addoption("--training-seed", type=int, default=0,
                     help="seed of the training tests (`seeded_training`); the asserted "
                          "properties were checked over seeds 0-9")


@pytest.fixture
def seeded_training(request):
    """Seeds Python, NumPy and TensorFlow and turns on TF's op determinism for one training test,
    so that it gives the same numbers on every run; yields the seed."""
    import tensorflow as tf
    seed = request.config.getoption("--training-seed")
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    try:
        yield seed
    finally:
        # TF 2.16 exports only the switch on; the tests after this one need it off again.
        from tensorflow.python.framework import config as tf_config
        tf_config.disable_op_determinism()
