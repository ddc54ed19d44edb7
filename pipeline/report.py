"""The one writer of results/: turns a finished run's artifacts (found through MLMD) into
`results/<dataset>/<representation>/metrics.json` and the printed results table.

metrics.json holds the Evaluator's (TFMA) AUCs overall and by slice (new / existing items, the
tail, new / warm users), the must-beat `baselines` (pipeline/baselines.py, computed from
InteractionFeatures' train and eval splits) and the `probes` of the Trainer's model
(pipeline/probes.py: its AUC with the history labels shuffled and with no history, the model
scored in-process on the perturbed Transform output).

Also here, below the experiment (pipeline/experiment/), what both score models with: the
Transform output's splits in memory (TransformedSplits), batching and in-process scoring
(make_dataset, predict_scores), the Trainer's model as a Keras model on transformed features
(load_ranking_model) and the probes' scoring (probe_metrics).
"""
import json
import os
from typing import TYPE_CHECKING, Dict, Iterable, List, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2

from components.example_gen import executor as example_gen_executor
from components.interaction_features import core as interaction_features_core
from pipeline import baselines as baselines_lib
from pipeline import probes as probes_lib
from pipeline.config import DEFAULT_ENCODER_NAME, RunConfig
from schemas import features

if TYPE_CHECKING:
    from tfx import types as tfx_types

    from models.ranking.config import RankingConfig

METRICS_FILE = "metrics.json"
# The columns of the printed table, in order (all keys of metrics.json; a model's `baselines`
# are rows of their own under it, its `probes` a line under the table).
TABLE_COLUMNS = ("dataset", "representation", "auc_overall", "auc_new_items", "auc_existing_items",
                 "auc_tail", "auc_new_users", "auc_warm_users",
                 "num_train", "num_eval", "num_new_item_eval", "blessed", "seconds")

LABEL = features.transformed_name(features.LABEL)
IS_NEW_ITEM = features.transformed_name(features.IS_NEW_ITEM)
IS_NEW_USER = features.transformed_name(features.IS_NEW_USER)
IS_TAIL_ITEM = features.transformed_name(features.IS_TAIL_ITEM)
# TFMA slice names (read_evaluation) of metrics.json's slice AUCs.
EVALUATOR_SLICES = {"auc_overall": "",
                    "auc_new_items": f"{features.IS_NEW_ITEM}=1",
                    "auc_existing_items": f"{features.IS_NEW_ITEM}=0",
                    "auc_tail": f"{features.IS_TAIL_ITEM}=1",
                    "auc_new_users": f"{features.IS_NEW_USER}=1",
                    "auc_warm_users": f"{features.IS_NEW_USER}=0"}
# Batch size for validation and eval scoring (no effect on the metrics: dropout is off and
# Keras' AUC accumulates over batches); training keeps the config's batch_size.
SCORING_BATCH_SIZE = 4096
TRAINING_SUMMARY_FILE = "training_summary.json"


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


def _latest_run(config: RunConfig):
    """(store, the newest pipeline run's executions)."""
    store = open_store(config.metadata_path)
    # The store is per pipeline (RunConfig.metadata_path); run contexts are named by run id.
    runs = store.get_contexts_by_type("pipeline_run")
    if not runs:
        raise RuntimeError(f"no run of pipeline {config.pipeline_name!r} in {config.metadata_path}")
    run = max(runs, key=lambda c: (c.create_time_since_epoch, c.id))
    return store, store.get_executions_by_context(run.id)


def latest_run_outputs(config: RunConfig) -> Dict[str, Dict[str, List]]:
    """{component id: {output key: [mlmd Artifact]}} of the newest pipeline run (cached
    executions included, so a fully cached rerun still reports)."""
    store, executions = _latest_run(config)
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


# --- the transformed splits in memory and in-process scoring --------------------------------------
def run_features(representation: str, budget: int, use_history: bool) -> Tuple[str, ...]:
    """The transformed features one run trains and scores on: the label and what the ranking
    model reads (models/ranking/representations.model_input_keys, the one mapping)."""
    from models.ranking import representations
    return (LABEL,) + representations.model_input_keys(representation, budget, use_history)


def history_item_keys(representation: str, budget: int) -> Tuple[str, ...]:
    """The history's item inputs of a representation's model (what it reads with history beyond
    what it reads without, the history labels and mask aside)."""
    from models.ranking import representations
    without = set(representations.model_input_keys(representation, budget, False))
    return tuple(k for k in representations.model_input_keys(representation, budget, True)
                 if k not in without and k not in (representations.HISTORY_LABELS_KEY,
                                                   representations.HISTORY_MASK_KEY))


class TransformedSplits:
    """The Transform output's splits held in memory as numpy arrays, feature by feature: a
    feature is parsed from the gzipped TFRecords the first time it is asked for, and `keep`
    frees those no longer needed (history_spm_<B> is [rows, H, S] int64 per budget)."""

    def __init__(self, transformed_examples: "tfx_types.Artifact", transform_graph_uri: str):
        import tensorflow_transform as tft
        self.examples = transformed_examples
        self.spec = tft.TFTransformOutput(transform_graph_uri).transformed_feature_spec()
        self._data: Dict[str, Dict[str, np.ndarray]] = {s: {} for s in features.SPLITS}

    def files(self, split: str) -> List[str]:
        return split_files(self.examples, split)

    def has(self, name: str) -> bool:
        """Whether the Transform output has feature `name`."""
        return name in self.spec

    def get(self, split: str, names: Iterable[str]) -> Dict[str, np.ndarray]:
        names = list(dict.fromkeys(names))
        unknown = [n for n in names if n not in self.spec]
        if unknown:
            raise ValueError(f"features {unknown} are not in the Transform output "
                             f"(has {sorted(self.spec)})")
        cache = self._data[split]
        missing = [n for n in names if n not in cache]
        if missing:
            spec = {n: self.spec[n] for n in missing}
            parts: Dict[str, list] = {n: [] for n in missing}
            ds = (tf.data.TFRecordDataset(self.files(split), compression_type="GZIP")
                  .batch(8192).map(lambda x: tf.io.parse_example(x, spec)))
            for batch in ds:
                for n in missing:
                    parts[n].append(batch[n].numpy())
            for n in missing:
                cache[n] = np.concatenate(parts[n]) if parts[n] else np.zeros([0], np.int64)
        return {n: cache[n] for n in names}

    def keep(self, names: Iterable[str]) -> None:
        names = set(names)
        for cache in self._data.values():
            for n in [n for n in cache if n not in names]:
                del cache[n]

    def num_rows(self, split: str) -> int:
        return int(len(self.get(split, [LABEL])[LABEL]))

    def nbytes(self) -> int:
        return int(sum(a.nbytes for cache in self._data.values() for a in cache.values()))


def make_dataset(arrays: Dict[str, np.ndarray], batch_size: int, shuffle_seed: Optional[int] = None):
    """Batches of `arrays` (row-aligned): reshuffled every epoch with `shuffle_seed`, or in order.
    Shuffles row indices and gathers whole batches (cheaper than shuffling row structures)."""
    n = len(next(iter(arrays.values())))
    tensors = {k: tf.constant(v) for k, v in arrays.items()}
    ds = tf.data.Dataset.range(n)
    if shuffle_seed is not None:
        ds = ds.shuffle(n, seed=int(shuffle_seed), reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda idx: {k: tf.gather(t, idx) for k, t in tensors.items()})
    return ds.prefetch(tf.data.AUTOTUNE)


def predict_scores(model, arrays: Dict[str, np.ndarray]) -> np.ndarray:
    """Probabilities of a positive label, in row order."""
    logits = model.predict(make_dataset(arrays, SCORING_BATCH_SIZE), verbose=0)
    return tf.sigmoid(tf.reshape(logits, [-1])).numpy()


def trainer_ranking_config(config: RunConfig) -> Optional["RankingConfig"]:
    """The RankingConfig the newest run's Trainer trained with (its custom_config), or None."""
    from models.ranking.config import RankingConfig
    custom_config = latest_run_custom_config(config, "Trainer")
    return None if custom_config is None else RankingConfig.from_custom_config(custom_config)


def load_ranking_model(cfg: "RankingConfig", serving_model_dir: str,
                       sample: Mapping[str, np.ndarray], catalog_embeddings=None):
    """A Trainer's model as a Keras model taking transformed features: built from its
    RankingConfig, called once on `sample` (a few rows of its inputs) and given the exported
    SavedModel's weights."""
    from models.ranking import trainer_module
    model = trainer_module.build_model(cfg, catalog_embeddings)
    model({k: tf.constant(v) for k, v in sample.items()}, training=False)
    variables = os.path.join(serving_model_dir, tf.saved_model.VARIABLES_DIRECTORY,
                             tf.saved_model.VARIABLES_FILENAME)
    model.load_weights(variables).expect_partial()
    return model


def empty_id_fingerprint() -> int:
    """The fingerprint Transform gives the empty id (features.HISTORY_PAD): history_fingerprint's
    padding (models/ranking/preprocessing.py, the one definition)."""
    from models.ranking import preprocessing
    return int(preprocessing.fingerprint_item_ids(tf.constant([features.HISTORY_PAD])).numpy()[0])


def probe_metrics(model, arrays: Mapping[str, np.ndarray], representation: str,
                  budget: int) -> Dict[str, Optional[float]]:
    """{PROBE_KEYS: AUC} of a model with history on the transformed eval `arrays` (its inputs, the
    label and is_new_item): scored on the eval rows with the history labels shuffled and with no
    history (pipeline/probes.py), AUC overall and on new items."""
    from models.ranking import representations
    names = run_features(representation, budget, True)
    inputs = {k: arrays[k] for k in names}
    pads = probes_lib.history_pad_values(history_item_keys(representation, budget),
                                         empty_id_fingerprint())
    keys = dict(labels_key=representations.HISTORY_LABELS_KEY,
                mask_key=representations.HISTORY_MASK_KEY)
    perturbed = {probes_lib.SHUFFLED_LABELS: probes_lib.shuffle_history_labels(inputs, **keys),
                 probes_lib.NO_HISTORY: probes_lib.remove_history(inputs, pads, **keys)}
    masks = baselines_lib.slice_masks(arrays[IS_NEW_ITEM])
    out: Dict[str, Optional[float]] = {}
    for probe in probes_lib.PROBES:
        aucs = baselines_lib.slice_aucs(arrays[LABEL], predict_scores(model, perturbed[probe]),
                                        masks)
        overall, new_items = probes_lib.probe_keys(probe)
        out[overall], out[new_items] = aucs["auc_overall"], aucs["auc_new_items"]
    return out


# --- the baselines from InteractionFeatures' splits ----------------------------------------------
def _read_examples(files: List[str], spec: dict, history_length: Optional[int] = None,
                   batch_size: int = 8192) -> Dict[str, np.ndarray]:
    """Parses gzipped tf.Examples: {feature: numpy}, and for a RaggedFeature `name` in spec,
    `name` as [rows, history_length] (the first history_length values, zero padded) plus
    `name + "/mask"`."""
    ragged = [k for k, v in spec.items() if isinstance(v, tf.io.RaggedFeature)]
    parts: Dict[str, list] = {}
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(batch_size)
    for batch in ds:
        parsed = tf.io.parse_example(batch, spec)
        for k, v in parsed.items():
            if k in ragged:
                lengths = tf.minimum(v.row_lengths(), history_length)
                parts.setdefault(k, []).append(
                    v.to_tensor(default_value=0, shape=[None, history_length]).numpy())
                parts.setdefault(f"{k}/mask", []).append(
                    tf.sequence_mask(lengths, history_length, dtype=tf.int64).numpy())
            else:
                parts.setdefault(k, []).append(v.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def read_baseline_inputs(raw_examples: "tfx_types.Artifact", history_length: int) -> dict:
    """What the baselines and their slices need from InteractionFeatures' Examples (raw rows:
    item and user ids): {"train": {item_id, user_id, label}, "eval": {item_id, user_id, label,
    history_labels [rows, H], history_labels/mask, is_new_item, is_new_user, is_tail_item}}.
    A flag the examples lack (-1 on every row) is derived from the train split by its definition
    (features.IS_NEW_USER, IS_TAIL_ITEM)."""
    ids = {features.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
           features.USER_ID: tf.io.FixedLenFeature([], tf.string),
           features.LABEL: tf.io.FixedLenFeature([], tf.int64)}
    train = _read_examples(split_files(raw_examples, features.TRAIN), ids)
    flags = (features.IS_NEW_ITEM, features.IS_NEW_USER, features.IS_TAIL_ITEM)
    ev = _read_examples(split_files(raw_examples, features.EVAL), {
        **ids, features.HISTORY_LABELS: tf.io.RaggedFeature(tf.int64),
        **{f: tf.io.FixedLenFeature([], tf.int64, default_value=-1) for f in flags}},
        history_length=int(history_length))
    if np.any(ev[features.IS_NEW_USER] < 0):
        ev[features.IS_NEW_USER] = baselines_lib.new_users(ev[features.USER_ID],
                                                           train[features.USER_ID])
    if np.any(ev[features.IS_TAIL_ITEM] < 0):
        ev[features.IS_TAIL_ITEM] = baselines_lib.tail_from_counts(
            ev[features.IS_NEW_ITEM],
            baselines_lib.train_rows(train[features.ITEM_ID], ev[features.ITEM_ID]),
            features.TAIL_MIN_TRAIN_ROWS, features.TAIL_MAX_TRAIN_ROWS)
    return {"train": train, "eval": ev}


def baseline_results(raw_examples: "tfx_types.Artifact", history_length: int) -> dict:
    """{"metrics": {baseline: {auc_<slice>: AUC}}, "counts": {num_eval / num_<slice>: rows},
    "undefined": [auc_<slice> of the slices with fewer than two classes, where no AUC exists]}
    of the three baselines (pipeline/baselines.py) on the eval split of InteractionFeatures'
    output `raw_examples`, H = history_length."""
    data = read_baseline_inputs(raw_examples, history_length)
    train, ev = data["train"], data["eval"]
    scores = baselines_lib.baseline_scores(
        ev[features.HISTORY_LABELS], ev[f"{features.HISTORY_LABELS}/mask"], ev[features.ITEM_ID],
        train[features.ITEM_ID], train[features.LABEL], history_length=history_length)
    masks = baselines_lib.slice_masks(ev[features.IS_NEW_ITEM], ev[features.IS_TAIL_ITEM],
                                      ev[features.IS_NEW_USER])
    labels = ev[features.LABEL]
    return {"metrics": baselines_lib.baseline_metrics(labels, scores, masks),
            "counts": baselines_lib.slice_counts(masks),
            "undefined": [f"auc_{name}" for name, mask in masks.items()
                          if np.unique(labels[mask]).size < 2]}


def _custom(artifact, name):
    p = artifact.custom_properties.get(name)
    if p is None:
        return None
    return p.string_value or p.int_value or p.double_value


def _slice_value(single_slice_key):
    kind = single_slice_key.WhichOneof("kind")
    value = getattr(single_slice_key, kind) if kind else ""
    return value.decode() if isinstance(value, bytes) else value


def read_evaluation(uri: str) -> Dict[str, Dict[str, float]]:
    """{slice: {metric: value}} for the candidate model; slice '' = overall, else 'is_new_item=0/1'."""
    import tensorflow_model_analysis as tfma
    result: Dict[str, Dict[str, float]] = {}
    for m in tfma.load_metrics(uri):
        keys = m.slice_key.single_slice_keys
        name = ",".join(f"{k.column}={_slice_value(k)}" for k in keys)
        for kv in m.metric_keys_and_values:
            if kv.key.model_name not in ("", "candidate") or kv.key.is_diff:
                continue
            v = kv.value
            value = v.double_value.value if v.HasField("double_value") else None
            if value is not None:
                result.setdefault(name, {})[kv.key.name] = value
    return result


def _read_json(path: str) -> Optional[dict]:
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def trainer_probes(config: RunConfig, outputs: Optional[Dict[str, Dict[str, List]]] = None
                   ) -> Optional[Dict[str, Optional[float]]]:
    """The probes (probe_metrics) of the newest run's Trainer model, scored in-process on its
    Transform output's eval split; None when the model reads no history (or the run has no
    Trainer)."""
    from tfx.utils import path_utils

    from models.ranking import trainer_module
    outputs = outputs if outputs is not None else latest_run_outputs(config)
    cfg = trainer_ranking_config(config)
    trainer_model = outputs.get("Trainer", {}).get("model")
    if cfg is None or not cfg.use_history or not trainer_model:
        return None
    store = open_store(config.metadata_path)
    graph = outputs["Transform"]["transform_graph"][0].uri
    data = TransformedSplits(tfx_artifact(store, outputs["Transform"]["transformed_examples"][0]),
                             graph)
    names = run_features(cfg.representation, cfg.item_table_size, True)
    arrays = data.get(features.EVAL, list(names) + [IS_NEW_ITEM])
    model = load_ranking_model(cfg, path_utils.serving_model_path(trainer_model[0].uri),
                               {k: arrays[k][:2] for k in names},
                               trainer_module.load_catalog_embeddings(graph))
    return probe_metrics(model, arrays, cfg.representation, cfg.item_table_size)


def collect_metrics(config: RunConfig, seconds: float) -> dict:
    outputs = latest_run_outputs(config)
    evaluation = outputs.get("Evaluator", {}).get("evaluation")
    if not evaluation:
        raise RuntimeError("the latest run has no Evaluator output; did the pipeline finish?")
    ev = read_evaluation(evaluation[0].uri)
    examples = outputs["InteractionFeatures"]["examples"][0]
    split_summary = _read_json(os.path.join(
        examples.uri, interaction_features_core.SUMMARY_FILE)) or {}
    blessing = outputs.get("Evaluator", {}).get("blessing")
    blessed = bool(blessing and _custom(blessing[0], "blessed") == 1)
    pushed = outputs.get("Pusher", {}).get("pushed_model")
    pushed_dir = ""
    if pushed and _custom(pushed[0], "pushed") == 1:
        pushed_dir = _custom(pushed[0], "pushed_destination") or ""
    training = {}
    model = outputs.get("Trainer", {}).get("model_run")
    if model:
        training = _read_json(os.path.join(model[0].uri, TRAINING_SUMMARY_FILE)) or {}
    rejects, rejects_files = {}, {}
    for gen, table in (("ItemExampleGen", "items"), ("InteractionExampleGen", "interactions")):
        ex = outputs.get(gen, {}).get("examples")
        if ex:
            rejects_dir = example_gen_executor.rejects_dir_of(ex[0].uri)
            rejects[table] = _read_json(example_gen_executor.summary_path(rejects_dir, table)) or {}
            rejects_files[table] = example_gen_executor.rejects_path(rejects_dir, table)
    baselines = baseline_results(tfx_artifact(open_store(config.metadata_path), examples),
                                 config.history_length)
    # TFMA reports an AUC (0) on a slice of one class, where none exists: those are null.
    undefined = set(baselines["undefined"])
    return {
        "dataset": config.dataset_name,
        "representation": config.representation,
        **{key: None if key in undefined else ev.get(name, {}).get("auc")
           for key, name in EVALUATOR_SLICES.items()},
        "baselines": baselines["metrics"],
        "probes": trainer_probes(config, outputs),
        "num_train": split_summary.get("num_train"),
        "num_validation": split_summary.get("num_validation"),
        "num_eval": split_summary.get("num_eval"),
        "num_new_item_eval": split_summary.get("num_new_item_eval"),
        "eval_example_count": ev.get("", {}).get("example_count"),
        "item_table_rows": training.get("item_table_rows"),
        "epochs_run": training.get("epochs_run"),
        "best_val_auc": training.get("best_val_auc"),
        "blessed": blessed,
        "pushed_model_dir": pushed_dir,
        "rows_rejected": {t: s.get("rows_rejected") for t, s in rejects.items()},
        "rejects_files": rejects_files,
        "seconds": round(seconds, 1),
        "evaluation_uri": evaluation[0].uri,
    }


def copy_sid_report(config: RunConfig) -> Optional[dict]:
    """Copies the latest run's SID report (sid_report.{json,md,png}) to results/<dataset>/;
    returns its JSON content plus "path", or None when the run has no SemanticIdGen output."""
    from components import artifacts
    reports = latest_run_outputs(config).get("SemanticIdGen", {}).get("sid_report")
    if not reports:
        return None
    out_dir = os.path.join(config.results_dir, config.dataset_name)
    os.makedirs(out_dir, exist_ok=True)
    names = (artifacts.SidReport.JSON_FILE, artifacts.SidReport.MD_FILE, artifacts.SidReport.PNG_FILE)
    for name in names:
        src = os.path.join(reports[0].uri, name)
        if tf.io.gfile.exists(src):
            tf.io.gfile.copy(src, os.path.join(out_dir, name), overwrite=True)
    content = _read_json(os.path.join(out_dir, artifacts.SidReport.JSON_FILE)) or {}
    return {**content, "path": os.path.join(out_dir, artifacts.SidReport.JSON_FILE)}


def format_sid_summary(sid_report: dict) -> str:
    def pct(xs):
        return " ".join(f"{100 * x:.0f}%" for x in xs or [])

    def num(xs):
        return " ".join("-" if x is None else f"{x:.2f}" for x in xs or [])

    def one(x, spec):
        return "-" if x is None else format(x, spec)

    return "\n".join([
        f"  items {sid_report.get('num_items')}, {sid_report.get('num_levels')} levels x "
        f"{sid_report.get('codebook_size')} codes; reconstruction mse "
        f"{one(sid_report.get('reconstruction_mse'), '.4g')}",
        f"  utilisation per level: {pct(sid_report.get('utilization'))}",
        f"  collisions before breaker: {sid_report.get('collisions_before_breaker')} "
        f"(largest group {sid_report.get('largest_collision_group')}); duplicates after breaker: "
        f"{sid_report.get('duplicate_sids_after_breaker')}",
        f"  mean cosine of items sharing 1..L codes: {num(sid_report.get('hierarchy_cosine'))} "
        f"(random pairs {one(sid_report.get('random_pair_cosine'), '.2f')})",
    ])


def write_metrics(config: RunConfig, metrics: dict) -> str:
    os.makedirs(config.results_path, exist_ok=True)
    path = os.path.join(config.results_path, METRICS_FILE)
    with open(path, "w") as f:
        json.dump(metrics, f, indent=2, sort_keys=True)
    return path


def table_rows(rows: List[dict]) -> List[dict]:
    """The printed table's rows: each metrics.json row followed by one row per baseline of it
    (its `baselines`: representation = the baseline's name, the same AUC columns)."""
    out = []
    for r in rows:
        out.append(r)
        for name, aucs in (r.get("baselines") or {}).items():
            out.append({"dataset": r.get("dataset"), "representation": name, **aucs})
    return out


def format_probes(row: dict) -> Optional[str]:
    """One line on a metrics.json row's probes (None when the row has no `probes` key)."""
    if "probes" not in row:
        return None
    p = row["probes"]
    if not p:
        return f"Probes of {row.get('representation')}: none (the model reads no history)"

    def auc(key):
        return "-" if p.get(key) is None else f"{p[key]:.4f}"
    lines = []
    for probe, label in ((probes_lib.SHUFFLED_LABELS, "history labels shuffled"),
                         (probes_lib.NO_HISTORY, "no history")):
        overall, new_items = probes_lib.probe_keys(probe)
        lines.append(f"{label} {auc(overall)} (new items {auc(new_items)})")
    return f"Probes of {row.get('representation')} (AUC): " + "; ".join(lines)


def format_table(rows: List[dict], columns=TABLE_COLUMNS) -> str:
    """The results table of metrics.json rows (their baselines as rows under each), then a line
    on each row's probes."""
    def fmt(column, v):
        if isinstance(v, float):
            return f"{v:.4f}" if column.startswith("auc") else f"{v:.1f}"
        return "-" if v is None else str(v)
    cells = [[fmt(c, r.get(c)) for c in columns] for r in table_rows(rows)]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    probes = [p for p in (format_probes(r) for r in rows) if p]
    return "\n".join([line.rstrip(), sep] + body + probes)


def new_item_model_paths(config: RunConfig) -> Tuple[str, str]:
    """The content encoder folder and the RQ-VAE SavedModel of the latest run of `config`'s
    pipeline: what `semids predict --new-item-text` encodes new items with."""
    from tfx.utils import path_utils
    try:
        model = latest_run_outputs(config)["RqVaeTrainer"]["model"][0].uri
    except (RuntimeError, KeyError, IndexError) as e:
        raise RuntimeError(f"no RQ-VAE model found in {config.metadata_path}: run `make run` first "
                           f"or pass --rqvae_model_dir ({e})") from None
    encoder_dir = config.encoder_dir or os.path.join(config.output_dir, "encoders",
                                                     DEFAULT_ENCODER_NAME)
    return encoder_dir, path_utils.serving_model_path(model)
