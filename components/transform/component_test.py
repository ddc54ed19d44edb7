"""CatalogTransform's user module reaches Beam workers in other processes, as stock Transform's
does: its module_file becomes a wheel (module_path) when the pipeline is compiled."""
import os

from tfx import types
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs

from components import artifacts
from components.transform.component import CatalogTransform
from models.ranking import preprocessing

PREPROCESSING_MODULE = os.path.abspath(preprocessing.__file__)


def _transform(**kwargs):
    return CatalogTransform(
        examples=types.Channel(type=standard_artifacts.Examples),
        schema=types.Channel(type=standard_artifacts.Schema),
        catalog=types.Channel(type=artifacts.ItemCatalog), **kwargs)


def test_module_file_is_packaged_into_a_wheel_for_the_workers(tmp_path):
    """Without it the executor imports the file as `user_module_0`, which Beam workers in other
    processes (multi-process DirectRunner, an EXTERNAL worker pool, Dataflow) cannot unpickle."""
    transform = _transform(module_file=PREPROCESSING_MODULE)
    assert transform.exec_properties[specs.MODULE_FILE_KEY] == PREPROCESSING_MODULE
    transform._resolve_pip_dependencies(str(tmp_path))  # what LocalDagRunner.run does first
    props = transform.exec_properties
    assert props[specs.MODULE_FILE_KEY] is None
    module, wheel = props[specs.MODULE_PATH_KEY].split("@", 1)
    assert module == "preprocessing"
    assert wheel.startswith(os.path.join(str(tmp_path), "_wheels", "tfx_user_code_"))
    assert wheel.endswith(".whl") and os.path.isfile(wheel)


def test_a_dotted_preprocessing_fn_needs_no_wheel(tmp_path):
    fn = "models.ranking.preprocessing.preprocessing_fn"
    transform = _transform(preprocessing_fn=fn)
    transform._resolve_pip_dependencies(str(tmp_path))
    assert transform.exec_properties[specs.PREPROCESSING_FN_KEY] == fn
    assert not transform.exec_properties.get(specs.MODULE_PATH_KEY)
    assert not os.path.exists(os.path.join(str(tmp_path), "_wheels"))
