"""Executor of CatalogTransform: TFX's Transform executor, with the URIs of the extra input
channels in custom_config, and the catalog's content embeddings stored beside the graph."""
import os
from typing import Any, Dict, List

import tensorflow as tf
from tfx import types
from tfx.components.transform import executor as tfx_transform_executor
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import json_utils

from components import artifacts
from models.ranking.preprocessing import CATALOG_DIR, SPM_DIR
from schemas import artifact_layout

CATALOG_KEY = "catalog"
SPM_MODELS_KEY = "spm_models"
# What the transform_graph artifact holds beside TFX's files (schemas/artifact_layout.py).
CATALOG_EMBEDDINGS_FILE = artifact_layout.TransformGraph.CATALOG_EMBEDDINGS_FILE
SPM_MODELS_DIR = artifact_layout.TransformGraph.SPM_MODELS_DIR
CATALOG_METADATA_FILE = artifact_layout.TransformGraph.CATALOG_METADATA_FILE
SPLIT_SUMMARY_FILE = artifact_layout.TransformGraph.SPLIT_SUMMARY_FILE


class Executor(tfx_transform_executor.Executor):
    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
        input_dict = dict(input_dict)
        extra = {CATALOG_DIR: input_dict.pop(CATALOG_KEY, None),
                 SPM_DIR: input_dict.pop(SPM_MODELS_KEY, None)}
        extra = {k: artifact_utils.get_single_uri(v) for k, v in extra.items() if v}
        if extra:
            key = standard_component_specs.CUSTOM_CONFIG_KEY
            config = json_utils.loads(exec_properties.get(key) or "null") or {}
            exec_properties = {**exec_properties, key: json_utils.dumps({**config, **extra})}
        result = super().Do(input_dict, output_dict, exec_properties)
        graph_uri = artifact_utils.get_single_uri(
            output_dict[standard_component_specs.TRANSFORM_GRAPH_KEY])
        if CATALOG_DIR in extra:
            tf.io.gfile.copy(os.path.join(extra[CATALOG_DIR], artifacts.ItemCatalog.EMBEDDINGS_NPY),
                             os.path.join(graph_uri, CATALOG_EMBEDDINGS_FILE), overwrite=True)
            tf.io.gfile.copy(os.path.join(extra[CATALOG_DIR], artifacts.ItemCatalog.METADATA_JSON),
                             os.path.join(graph_uri, CATALOG_METADATA_FILE), overwrite=True)
        # The examples' split summary (their spans): the Trainer records them in the model.
        summary = os.path.join(artifact_utils.get_single_uri(
            input_dict[standard_component_specs.EXAMPLES_KEY]), SPLIT_SUMMARY_FILE)
        if tf.io.gfile.exists(summary):
            tf.io.gfile.copy(summary, os.path.join(graph_uri, SPLIT_SUMMARY_FILE), overwrite=True)
        if SPM_DIR in extra:
            tf.io.gfile.makedirs(os.path.join(graph_uri, SPM_MODELS_DIR))
            for name in tf.io.gfile.listdir(extra[SPM_DIR]):
                if name.endswith(".model"):
                    tf.io.gfile.copy(os.path.join(extra[SPM_DIR], name),
                                     os.path.join(graph_uri, SPM_MODELS_DIR, name), overwrite=True)
        return result
