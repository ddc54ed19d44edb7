"""The contract every layer shares: feature, file and split names (features.py), the file names
inside artifacts (artifact_layout.py) and the curated TFMD schema (interactions.pbtxt, shipped as
package data so that INTERACTIONS_SCHEMA resolves in an installed semids as in the repository).
No TFX and no TensorFlow at import."""
import os

INTERACTIONS_SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "interactions.pbtxt")
