"""The TFX cache follows the code (components/fingerprint.py), on a copy of the project:
- in the default suite, without running anything: building the pipeline before and after a code
  change gives new exec properties (TFX's cache key) to exactly the components whose code changed;
- marked slow, with real runs: a change in a module the Transform graph uses reruns Transform and
  what is downstream of it and nothing else, and a change under serving/ reruns nothing, with the
  cache on. Execution states come from the run's MLMD (CACHED vs COMPLETE)."""
import os
import shutil
import subprocess
import sys
import time

import pytest

from components import fingerprint

pytestmark = pytest.mark.e2e

REPO_ROOT = fingerprint.REPO_ROOT
# What the copy holds: the project packages, the lock file (in every fingerprint), setup.py.
COPIED = fingerprint.PROJECT_PACKAGES + ("requirements", "setup.py")
# A module of the Transform graph's closure (models/ranking/preprocessing.py imports it) that no
# component upstream of Transform runs, so Transform can only rerun for its own fingerprint.
TRANSFORM_MODULE = os.path.join("models", "ranking", "catalog_lookup.py")
SERVING_MODULE = os.path.join("serving", "server.py")
# The tiny synthetic run (the e2e fixture's sizes, one ranking epoch, two RQ-VAE epochs).
# min_auc above 1 blesses no model: the Evaluator's baseline (the latest blessed model) then
# stays empty, so the Evaluator's inputs change only when the Trainer's model does.
CONFIG = dict(
    pipeline_name="semids-cache", dataset="synthetic", synthetic_num_users=100,
    synthetic_num_items=80, synthetic_num_interactions=1500, history_length=8,
    item_table_size=128, table_budgets=(64, 128), user_hash_buckets=400, embedding_dim=8,
    hidden_units=(16,), batch_size=128, max_epochs=1, early_stopping_patience=1, min_auc=1.01,
    rqvae_num_levels=3, rqvae_codebook_size=8, rqvae_latent_dim=16, rqvae_epochs=2,
    rqvae_batch_size=64, rqvae_dead_code_window=5)
RUN_SCRIPT = """\
import os
import sys

import models  # noqa: F401  (Keras 2 before TensorFlow)
from components import fingerprint
from pipeline.config import RunConfig
from pipeline.run import run_pipeline

# the copy's code runs, not the repository's (the venv installs semids in editable mode)
assert os.path.dirname(os.path.dirname(fingerprint.__file__)) == os.getcwd(), fingerprint.__file__
run_pipeline(RunConfig(output_dir={output_dir!r}, results_dir={results_dir!r}, **{config!r}),
             quiet=True)
"""
# Downstream of Transform.
TRANSFORM_AND_DOWNSTREAM = {"Transform", "Trainer", "Evaluator", "Pusher"}
# Runs no code and is never cached: it records a COMPLETE execution (its resolution) every run.
RESOLVER = "latest_blessed_model_resolver"


def _copy_project(dst: str) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in COPIED:
        src = os.path.join(REPO_ROOT, name)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(dst, name), ignore=ignore)
        else:
            shutil.copy2(src, os.path.join(dst, name))


def _append(root: str, rel: str, text: str) -> None:
    with open(os.path.join(root, rel), "a") as f:
        f.write(text)


# Builds the pipeline three times in the copy: as it is, after a change in a module of the
# Transform graph, after a change under serving/; prints each build's exec properties as JSON.
BUILD_SCRIPT = """\
import json
import os

import models  # noqa: F401  (Keras 2 before TensorFlow)
from components import fingerprint
from pipeline.config import RunConfig
from pipeline.inputs import PipelineInputs
from pipeline.pipeline import create_pipeline

assert os.path.dirname(os.path.dirname(fingerprint.__file__)) == os.getcwd(), fingerprint.__file__
config = RunConfig(output_dir={output_dir!r}, results_dir={results_dir!r}, **{config!r})
inputs = PipelineInputs(data_dir={output_dir!r}, encoder_dir={output_dir!r}, text_fields=("title",))


def build():
    pipeline = create_pipeline(config, inputs, items_fingerprint="fixed")
    return {{c.id: json.dumps(c.exec_properties, sort_keys=True, default=str)
            for c in pipeline.components}}


builds = [build()]
for rel in {changes!r}:
    with open(rel, "a") as f:
        f.write("\\n_CACHE_TEST_CONSTANT = 1\\n")
    builds.append(build())
print("BUILDS " + json.dumps(builds))
"""
# Run by Beam / TFX with code of ours: each carries a fingerprint of that code.
FINGERPRINTED = ("ItemExampleGen", "InteractionExampleGen", "ContentEmbedder", "RqVaeTrainer",
                 "SemanticIdGen", "InteractionFeatures", "StrictExampleValidator", "SpmTrainer",
                 "Transform", "Trainer")


def _run(copy: str, script: str) -> float:
    env = dict(os.environ, PYTHONPATH=copy, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    start = time.time()
    proc = subprocess.run([sys.executable, script], cwd=copy, env=env, capture_output=True,
                          text=True, timeout=3600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    return time.time() - start


def _latest_run_states(metadata_path: str) -> dict:
    """{component id: 'COMPLETE' / 'CACHED' / ...} of the newest pipeline run in MLMD."""
    from ml_metadata.proto import metadata_store_pb2

    from pipeline import mlmd
    store = mlmd.open_store(metadata_path)
    run = max(store.get_contexts_by_type("pipeline_run"),
              key=lambda c: (c.create_time_since_epoch, c.id))
    executions = store.get_executions_by_context(run.id)
    component_of = mlmd.component_ids(store, executions)
    return {component_of[e.id]: metadata_store_pb2.Execution.State.Name(e.last_known_state)
            for e in executions}


def _reran(states: dict) -> set:
    assert set(states.values()) <= {"COMPLETE", "CACHED"}, states
    assert states[RESOLVER] == "COMPLETE", states
    return {c for c, s in states.items() if s == "COMPLETE" and c != RESOLVER}


def _changed(before: dict, after: dict) -> set:
    assert set(before) == set(after)
    return {c for c in before if before[c] != after[c]}


def test_a_code_change_changes_the_cache_key_of_exactly_the_components_that_run_it(tmp_path):
    """TFX reruns a component when its exec properties or its inputs change: Transform and the
    Trainer get new exec properties here, so they rerun, and the Evaluator and Pusher follow from
    the Trainer's new model (the slow test below runs it)."""
    copy = str(tmp_path / "semids")
    os.makedirs(copy)
    _copy_project(copy)
    script = str(tmp_path / "build.py")
    with open(script, "w") as f:
        f.write(BUILD_SCRIPT.format(output_dir=str(tmp_path / "out"),
                                    results_dir=str(tmp_path / "results"), config=CONFIG,
                                    changes=[TRANSFORM_MODULE, SERVING_MODULE]))
    env = dict(os.environ, PYTHONPATH=copy, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, script], cwd=copy, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    import json
    line = next(x for x in proc.stdout.splitlines() if x.startswith("BUILDS "))
    as_is, after_transform_change, after_serving_change = json.loads(line[len("BUILDS "):])
    for component in FINGERPRINTED:
        assert fingerprint.CODE_FINGERPRINT_KEY in as_is[component] or \
            fingerprint.CODE_VERSION_KEY in as_is[component], (component, as_is[component])
    assert _changed(as_is, after_transform_change) == {"Transform", "Trainer"}
    assert _changed(after_transform_change, after_serving_change) == set()


@pytest.mark.slow  # three runs of the tiny pipeline (~4 min on 2 cores)
def test_a_code_change_reruns_exactly_the_components_that_run_it(tmp_path):
    copy = str(tmp_path / "semids")
    os.makedirs(copy)
    _copy_project(copy)
    out = str(tmp_path / "out")
    script = str(tmp_path / "run_tiny.py")
    with open(script, "w") as f:
        f.write(RUN_SCRIPT.format(output_dir=os.path.join(out, "outputs"),
                                  results_dir=os.path.join(out, "results"), config=CONFIG))
    from pipeline.config import RunConfig
    metadata_path = RunConfig(output_dir=os.path.join(out, "outputs"), **CONFIG).metadata_path
    seconds = {}

    seconds["first run"] = _run(copy, script)
    first = _latest_run_states(metadata_path)
    components = set(first)
    assert {"ContentEmbedder", "RqVaeTrainer", "SemanticIdGen", "SpmTrainer"} <= components
    assert _reran(first) == components - {RESOLVER}, first

    # (a) a harmless new constant in a module of the Transform graph: Transform reruns for its
    # own fingerprint (nothing upstream of it changed) and so does everything downstream.
    _append(copy, TRANSFORM_MODULE, "\n_CACHE_TEST_CONSTANT = 1\n")
    seconds["after a Transform-graph change"] = _run(copy, script)
    states = _latest_run_states(metadata_path)
    assert set(states) == components
    assert _reran(states) == TRANSFORM_AND_DOWNSTREAM, states
    for cached in ("ContentEmbedder", "RqVaeTrainer", "SemanticIdGen", "SpmTrainer",
                   "InteractionFeatures", "StrictExampleValidator"):
        assert states[cached] == "CACHED", (cached, states)

    # (b) a change under serving/: no component runs that code, nothing reruns.
    _append(copy, SERVING_MODULE, "\n_CACHE_TEST_CONSTANT = 1\n")
    seconds["after a serving/ change"] = _run(copy, script)
    states = _latest_run_states(metadata_path)
    assert set(states) == components
    assert _reran(states) == set(), states
    print("cache test seconds:", {k: round(v, 1) for k, v in seconds.items()})
