import os

# TFRS needs Keras 2 (tf-keras): set before TensorFlow is first imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
