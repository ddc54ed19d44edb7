"""Executor of CatalogTransform: TFX's Transform executor, with the catalog URI in custom_config."""
import json
from typing import Any, Dict, List

from tfx import types
from tfx.components.transform import executor as tfx_transform_executor
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import json_utils

from models.ranking.preprocessing import CATALOG_DIR as CATALOG_DIR_CONFIG_KEY

CATALOG_KEY = "catalog"


class Executor(tfx_transform_executor.Executor):
    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
        input_dict = dict(input_dict)
        catalog = input_dict.pop(CATALOG_KEY, None)
        if catalog:
            key = standard_component_specs.CUSTOM_CONFIG_KEY
            config = json_utils.loads(exec_properties.get(key) or "null") or {}
            config[CATALOG_DIR_CONFIG_KEY] = artifact_utils.get_single_uri(catalog)
            exec_properties = {**exec_properties, key: json_utils.dumps(config)}
        return super().Do(input_dict, output_dict, exec_properties)
