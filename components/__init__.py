"""semids TFX components.

The custom artifact types (components/artifacts.py) are also attributes of this package,
`components.ContentEncoder` etc.: a Vertex AI pipeline job names a custom type by such a
`<module>.<Class>` path, which TFX's container entrypoint imports (pipeline/vertex.py).
"""
import importlib

ARTIFACT_TYPES = ("ContentEncoder", "ItemCatalog", "SidReport", "SpmModels")


def __getattr__(name):
    if name in ARTIFACT_TYPES:
        return getattr(importlib.import_module("components.artifacts"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
