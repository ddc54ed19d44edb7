"""The pipeline's metadata (MLMD, sqlite): the newest run's executions and output artifacts,
and the files of an Examples artifact's split (TFX's artifact_utils; read through tf.io.gfile)."""
import json
import os
from typing import TYPE_CHECKING, Dict, List, Optional

import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2

from pipeline.config import RunConfig

if TYPE_CHECKING:
    from tfx import types as tfx_types


def open_store(metadata_path: str):
    """The pipeline's sqlite MLMD store, read-only."""
    from ml_metadata.metadata_store import metadata_store
    cfg = metadata_store_pb2.ConnectionConfig()
    cfg.sqlite.filename_uri = metadata_path
    cfg.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(cfg)


def component_ids(store, executions) -> Dict[int, str]:
    """{execution id: component id} from each execution's node context."""
    node_type_id = store.get_context_type("node").id
    out = {}
    for e in executions:
        for ctx in store.get_contexts_by_execution(e.id):
            if ctx.type_id == node_type_id:
                out[e.id] = ctx.name.split(".", 1)[-1]
    return out


def _run_order(run_context) -> tuple:
    """Pipeline runs in the order they started."""
    return run_context.create_time_since_epoch, run_context.id


def _latest_run(config: RunConfig):
    """(store, the newest pipeline run's executions)."""
    store = open_store(config.metadata_path)
    # The store is per pipeline (RunConfig.metadata_path); run contexts are named by run id.
    runs = store.get_contexts_by_type("pipeline_run")
    if not runs:
        raise RuntimeError(f"no run of pipeline {config.pipeline_name!r} in {config.metadata_path}")
    run = max(runs, key=_run_order)
    return store, store.get_executions_by_context(run.id)


def latest_run_outputs(config: RunConfig) -> Dict[str, Dict[str, List]]:
    """{component id: {output key: [mlmd Artifact]}} of the newest pipeline run (cached
    executions included, so a fully cached rerun still reports)."""
    store, executions = _latest_run(config)
    return _outputs(store, executions)


def run_outputs(config: RunConfig) -> List[Dict[str, Dict[str, List]]]:
    """latest_run_outputs' mapping for every run of the pipeline, oldest first ([] when the
    metadata store does not exist yet)."""
    if not os.path.exists(config.metadata_path):
        return []
    store = open_store(config.metadata_path)
    runs = sorted(store.get_contexts_by_type("pipeline_run"), key=_run_order)
    return [_outputs(store, store.get_executions_by_context(run.id)) for run in runs]


def _outputs(store, executions) -> Dict[str, Dict[str, List]]:
    outputs: Dict[str, Dict[str, List]] = {}
    if not executions:
        return outputs
    events = store.get_events_by_execution_ids([e.id for e in executions])
    artifact_ids = sorted({ev.artifact_id for ev in events})
    artifacts = {a.id: a for a in store.get_artifacts_by_id(artifact_ids)}
    component_of = component_ids(store, executions)
    for ev in events:
        if ev.type != metadata_store_pb2.Event.OUTPUT:
            continue
        key = ev.path.steps[0].key if ev.path.steps else ""
        comp = component_of.get(ev.execution_id, "?")
        outputs.setdefault(comp, {}).setdefault(key, []).append(artifacts[ev.artifact_id])
    return outputs


def latest_run_custom_config(config: RunConfig, component: str = "Trainer") -> Optional[dict]:
    """The custom_config exec property of `component` in the newest run (a cached execution
    carries it too), or None when the run has no such execution."""
    store, executions = _latest_run(config)
    component_of = component_ids(store, executions)
    found = [e for e in executions if component_of.get(e.id) == component]
    if not found:
        return None
    prop = max(found, key=lambda e: e.id).custom_properties.get("custom_config")
    return json.loads(prop.string_value) if prop is not None and prop.string_value else None


def latest_node_output(config: RunConfig, node_id: str, output_key: str):
    """The newest `output_key` artifact that node `node_id` of this pipeline wrote in any run
    (what a LatestArtifactStrategy Resolver will resolve), or None (no such artifact, or no
    metadata store yet)."""
    if not os.path.exists(config.metadata_path):
        return None
    store = open_store(config.metadata_path)
    ctx = store.get_context_by_type_and_name("node", f"{config.pipeline_name}.{node_id}")
    if ctx is None:
        return None
    executions = store.get_executions_by_context(ctx.id)
    if not executions:
        return None
    ids = sorted({ev.artifact_id for ev in store.get_events_by_execution_ids(
        [e.id for e in executions]) if ev.type == metadata_store_pb2.Event.OUTPUT
        and ev.path.steps and ev.path.steps[0].key == output_key})
    live = [a for a in store.get_artifacts_by_id(ids)
            if a.state == metadata_store_pb2.Artifact.LIVE]
    return max(live, key=lambda a: (a.create_time_since_epoch, a.id)) if live else None


def tfx_artifact(store, mlmd_artifact) -> "tfx_types.Artifact":
    """An MLMD Artifact proto as the TFX Artifact of its registered type (split_names etc.)."""
    from tfx.types import artifact_utils
    [artifact_type] = store.get_artifact_types_by_id([mlmd_artifact.type_id])
    return artifact_utils.deserialize_artifact(artifact_type, mlmd_artifact)


def split_files(examples: "tfx_types.Artifact", split: str) -> List[str]:
    """The files of one split of an Examples artifact (sorted; an error when there are none)."""
    from tfx.types import artifact_utils
    split_uri = artifact_utils.get_split_uri([examples], split)
    files = sorted(tf.io.gfile.glob(os.path.join(split_uri, "*")))
    if not files:
        raise RuntimeError(f"no examples for split {split!r} under {split_uri}")
    return files
