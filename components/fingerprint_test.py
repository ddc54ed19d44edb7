"""Code fingerprints: the import closure holds what a component runs and nothing else, and the
fingerprint changes exactly when a file of it (or the lock file) changes."""
import os
import textwrap

import pytest

from components import fingerprint as fp

TRANSFORM = ("models/ranking/preprocessing.py", "components.transform.executor")


def _write(root, rel, text=""):
    path = os.path.join(str(root), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))


@pytest.fixture
def tree(tmp_path):
    """A small project tree using the project's package names."""
    for pkg in ("schemas", "data", "models", "models/sub", "components", "components/comp",
                "serving"):
        _write(tmp_path, f"{pkg}/__init__.py")
    _write(tmp_path, "models/__init__.py", "import os\n")
    _write(tmp_path, "models/sub/__init__.py", "from . import helper\n")  # package init import
    _write(tmp_path, "models/sub/helper.py", "from schemas import names\n")
    _write(tmp_path, "schemas/names.py", "A = 1\n")
    _write(tmp_path, "schemas/unused.py", "B = 2\n")
    _write(tmp_path, "data/lazy.py", "C = 3\n")
    _write(tmp_path, "data/dynamic.py", "D = 4\n")
    _write(tmp_path, "components/comp/core.py", "from ..shared import util\n")  # relative
    _write(tmp_path, "components/shared/__init__.py")
    _write(tmp_path, "components/shared/util.py", "import numpy\n")  # third party: not followed
    _write(tmp_path, "components/comp/executor.py", """\
        import tensorflow as tf
        from components.comp import core
        from models import sub
        from schemas.names import A

        def run():
            import data.lazy  # inside a function
            import importlib
            return importlib.import_module("data.dynamic")
        """)
    _write(tmp_path, "serving/server.py", "from models.sub import helper\n")
    _write(tmp_path, "requirements/requirements.lock", "tfx==1.16.0\n")
    return tmp_path


def test_closure_follows_every_kind_of_import(tree):
    assert fp.module_closure(["components.comp.executor"], root=str(tree)) == [
        "components/__init__.py", "components/comp/__init__.py", "components/comp/core.py",
        "components/comp/executor.py", "components/shared/__init__.py",
        "components/shared/util.py", "data/__init__.py", "data/dynamic.py", "data/lazy.py",
        "models/__init__.py", "models/sub/__init__.py", "models/sub/helper.py",
        "schemas/__init__.py", "schemas/names.py"]


def test_a_path_names_the_same_module(tree):
    by_name = fp.module_closure(["components.comp.executor"], root=str(tree))
    assert fp.module_closure(["components/comp/executor.py"], root=str(tree)) == by_name
    assert fp.module_closure([str(tree / "components" / "comp" / "executor.py")],
                             root=str(tree)) == by_name
    for bad in ("numpy", "components.nothing", "setup.py", "../elsewhere.py"):
        with pytest.raises(ValueError, match="code fingerprint"):
            fp.module_closure([bad], root=str(tree))


def test_fingerprint_changes_with_its_closure_only(tree):
    root = str(tree)

    def fingerprint():
        return fp.code_fingerprint("components.comp.executor", root=root)

    first = fingerprint()
    assert len(first) == fp.DIGEST_CHARS and fingerprint() == first
    _write(tree, "schemas/unused.py", "B = 3\n")  # not imported
    _write(tree, "serving/server.py", "X = 1\n")  # imports the closure, is not in it
    assert fingerprint() == first
    _write(tree, "data/lazy.py", "C = 4\n")  # a function-level import
    second = fingerprint()
    assert second != first
    _write(tree, "models/sub/helper.py", "from schemas import names\nE = 5\n")  # via an __init__
    third = fingerprint()
    assert third not in (first, second)
    _write(tree, "requirements/requirements.lock", "tfx==1.16.1\n")
    assert fingerprint() not in (first, second, third)
    os.remove(os.path.join(root, "requirements", "requirements.lock"))  # absent: still hashes
    assert len(fingerprint()) == fp.DIGEST_CHARS


def test_transform_closure_in_the_repository():
    closure = fp.module_closure(TRANSFORM)
    # the SID symbols and ops the Transform graph uses, the artifact types (reached through
    # components/__init__.py's importlib.import_module) and the packages on the way
    for rel in ("models/ranking/preprocessing.py", "components/transform/executor.py",
                "models/sid/symbols.py", "models/sid/tf_ops.py", "components/artifacts.py",
                "schemas/features.py", "models/__init__.py", "components/__init__.py",
                "components/transform/__init__.py"):
        assert rel in closure, rel
    for rel in closure:
        assert rel.split("/")[0] in ("schemas", "models", "components"), rel
    assert not any(rel.startswith(("serving/", "pipeline/", "models/rqvae/", "data/"))
                   or rel.endswith("_test.py") for rel in closure)


def test_no_component_runs_serving_or_pipeline_code():
    for modules in (TRANSFORM, ("models/ranking/trainer_module.py",),
                    ("models/rqvae/trainer_module.py",), ("components.example_gen.executor",),
                    ("components.content_embedder.executor",),
                    ("components.semantic_id_gen.executor",), ("components.spm_trainer.executor",),
                    ("components.interaction_features.executor",),
                    ("components.example_validator.executor",)):
        closure = fp.module_closure(modules)
        assert not [r for r in closure if r.startswith(("serving/", "pipeline/"))], modules
    # the item side's SID assignment does not run the SID symbols of the Transform graph
    assert "models/sid/symbols.py" not in fp.module_closure(
        ["components.semantic_id_gen.executor"])
    assert "models/sid/symbols.py" not in fp.module_closure(["models/rqvae/trainer_module.py"])


def test_every_custom_component_carries_its_executor_fingerprint(tmp_path):
    """Each component fills in its executor's fingerprint itself (create_pipeline keeps no list)."""
    from tfx import types
    from tfx.types import standard_artifacts as sa

    from components import artifacts
    from components.content_embedder.component import ContentEmbedder
    from components.example_gen import executor as example_gen_executor
    from components.example_gen.component import ValidatingExampleGen
    from components.example_validator.component import StrictExampleValidator
    from components.interaction_features.component import InteractionFeatures
    from components.semantic_id_gen.component import SemanticIdGen
    from components.spm_trainer.component import SpmTrainer

    def channel(t):
        return types.Channel(type=t)

    built = [
        ContentEmbedder(items=channel(sa.Examples), encoder=channel(artifacts.ContentEncoder)),
        SemanticIdGen(embeddings=channel(sa.Examples), model=channel(sa.Model), num_levels=3,
                      codebook_size=8),
        SpmTrainer(examples=channel(sa.Examples), catalog=channel(artifacts.ItemCatalog),
                   vocab_sizes=[64]),
        InteractionFeatures(channel(sa.Examples), eval_fraction=0.2, validation_fraction=0.1,
                            new_item_fraction=0.1, seed=0, history_length=8),
        StrictExampleValidator(statistics=channel(sa.ExampleStatistics),
                               schema=channel(sa.Schema)),
    ]
    for component in built:
        executor_module = component.executor_spec.executor_class.__module__
        assert component.exec_properties[fp.CODE_FINGERPRINT_KEY] == \
            fp.code_fingerprint(executor_module), component.id
    gen = ValidatingExampleGen(str(tmp_path), "items", 0.05)
    config = example_gen_executor.unpack_custom_config(gen.exec_properties["custom_config"])
    assert config[fp.CODE_FINGERPRINT_KEY] == fp.code_fingerprint(example_gen_executor.__name__)
    # the fingerprints differ by executor (each component's own closure)
    assert len({c.exec_properties[fp.CODE_FINGERPRINT_KEY] for c in built}) == len(built)
