"""The one writer of results/: turns a finished run's artifacts (found through MLMD) into
`results/<dataset>/<representation>/metrics.json` and the printed results table.

metrics.json holds the Evaluator's (TFMA) AUCs overall and by slice (new / existing items, the
tail, new / warm users), the must-beat `baselines` (pipeline/baselines.py, computed from
InteractionFeatures' train and eval splits) and the `probes` of the Trainer's model
(pipeline/probes.py: its AUC with the history labels shuffled and with no history, the model
scored in-process on the perturbed Transform output; pipeline/evaluation.py does both).
"""
import json
import os
from typing import Dict, List, Optional, Tuple

import tensorflow as tf

from components.example_gen import executor as example_gen_executor
from components.interaction_features import core as interaction_features_core
from pipeline import probes as probes_lib
from pipeline.config import DEFAULT_ENCODER_NAME, RunConfig
from pipeline.evaluation import baseline_results, trainer_probes
from pipeline.mlmd import latest_run_outputs, open_store, tfx_artifact
from schemas import features

METRICS_FILE = "metrics.json"
# The columns of the printed table, in order (all keys of metrics.json; a model's `baselines`
# are rows of their own under it, its `probes` a line under the table).
TABLE_COLUMNS = ("dataset", "representation", "auc_overall", "auc_new_items", "auc_existing_items",
                 "auc_tail", "auc_new_users", "auc_warm_users",
                 "num_train", "num_eval", "num_new_item_eval", "blessed", "seconds")

# TFMA slice names (read_evaluation) of metrics.json's slice AUCs.
EVALUATOR_SLICES = {"auc_overall": "",
                    "auc_new_items": f"{features.IS_NEW_ITEM}=1",
                    "auc_existing_items": f"{features.IS_NEW_ITEM}=0",
                    "auc_tail": f"{features.IS_TAIL_ITEM}=1",
                    "auc_new_users": f"{features.IS_NEW_USER}=1",
                    "auc_warm_users": f"{features.IS_NEW_USER}=0"}
TRAINING_SUMMARY_FILE = "training_summary.json"


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
    spans = None  # the span window (span mode), and the spans of the warm start's base model
    if split_summary.get(interaction_features_core.EVAL_SPAN) is not None:
        spans = {"window": split_summary[interaction_features_core.WINDOW_SPANS],
                 "eval": split_summary[interaction_features_core.EVAL_SPAN],
                 "train": split_summary[interaction_features_core.TRAIN_SPANS],
                 "replay": split_summary.get(interaction_features_core.REPLAY_SPANS) or [],
                 "replay_share": split_summary.get(interaction_features_core.REPLAY_SHARE, 0.0),
                 "base_model": (training.get("warm_start") or {}).get("base_model_spans")}
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
        "num_new_user_eval": split_summary.get("num_new_user_eval"),
        "spans": spans,
        "warm_started": bool((training.get("warm_start") or {}).get("restored")),
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

    lines = [
        f"  items {sid_report.get('num_items')}, {sid_report.get('num_levels')} levels x "
        f"{sid_report.get('codebook_size')} codes; reconstruction mse "
        f"{one(sid_report.get('reconstruction_mse'), '.4g')}",
        f"  utilisation per level: {pct(sid_report.get('utilization'))}",
        f"  collisions before breaker: {sid_report.get('collisions_before_breaker')} "
        f"(largest group {sid_report.get('largest_collision_group')}); duplicates after breaker: "
        f"{sid_report.get('duplicate_sids_after_breaker')}",
        f"  mean cosine of items sharing 1..L codes: {num(sid_report.get('hierarchy_cosine'))} "
        f"(random pairs {one(sid_report.get('random_pair_cosine'), '.2f')})",
    ]
    space = sid_report.get("sid_space") or {}
    if space.get("previous_catalog"):  # a reuse or refresh run (docs/continuous.md)
        drift = space.get("drift") or {}
        lines.append(
            f"  SID space {space.get('mode')}: {space.get('new_items')} new items, "
            f"{space.get('sid_changed')} of {space.get('existing_items')} existing items changed "
            f"SID; reconstruction error new / existing {one(drift.get('mean_ratio'), '.2f')} "
            f"(mean), {one(drift.get('p95_ratio'), '.2f')} (p95)"
            + ("; above the drift threshold: a refresh is due (--refresh_sids)"
               if drift.get("refresh_due") else ""))
    return "\n".join(lines)


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
