"""pytest: imported before any test module, so TensorFlow loads Keras 2 (models/__init__.py)."""
import models  # noqa: F401
