"""TFX artifact types of the item side. Each is a folder under its URI; the file names inside
come from schemas/artifact_layout.py (each type inherits its layout class), so code below
components/ reads artifacts without importing TFX."""
from tfx.types import artifact

from schemas import artifact_layout


class ContentEncoder(artifact.Artifact, artifact_layout.ContentEncoder):
    """A sentence encoder's files (model.onnx + tokenizer.json). Imported with tfx.dsl.Importer."""
    TYPE_NAME = "ContentEncoder"


class ItemCatalog(artifact.Artifact, artifact_layout.ItemCatalog):
    """Every catalog item's Semantic ID and content embedding (SemanticIdGen)."""
    TYPE_NAME = "ItemCatalog"


class SidReport(artifact.Artifact, artifact_layout.SidReport):
    """The Semantic ID quality report (SemanticIdGen)."""
    TYPE_NAME = "SidReport"


class SpmModels(artifact.Artifact, artifact_layout.SpmModels):
    """SentencePiece models over Semantic-ID sentences, one per table budget (SpmTrainer)."""
    TYPE_NAME = "SpmModels"
