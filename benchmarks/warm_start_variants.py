"""Warm-start settings on validation: does a warm-started ranking model do better on the newest
span with another learning rate, more epochs, or no warm start at all?

    .venv/bin/python benchmarks/warm_start_variants.py      # after `semids simulate --dataset ml1m`

It reads a `reuse_warm` pipeline of the simulation (its MLMD store), and for each of its warm-started
Trainer runs retrains the ranking model in-process on that run's own Transform output (train and
validation splits of the newest training span), from that run's own base model, once per variant:
  default        the Trainer's settings (RankingConfig from the run's custom_config)
  lr_x0.3, lr_x3 the learning rate scaled
  epochs_x2      twice the epochs (early stopping still on validation)
  no_warm_start  the same span from the seeded initialisation: what the warm start is worth
  replay_0.5, replay_1
                 the warm start with a replay of older spans: a seeded sample, 0.5x / 1x the
                 newest span's train rows, of the train splits of the pipeline's earlier Trainer
                 runs (the SID space is frozen, so their Transform outputs read the same)
  window         from the seeded initialisation on every earlier train split plus the newest:
                 `scratch`'s training window, in the frozen SID space
  replay_all     the warm start on that whole window
Each variant is judged by its best validation AUC (early stopping's), against `default` trained in
the same process; eval is never read. Rows go to --out (resumable: a (span, variant) row is
written once), and a table with each variant's difference from `default` is printed.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

DEFAULT_METADATA = ("outputs/simulate/ml1m-6/runs/metadata/"
                    "simulate-ml1m-reuse_warm-sid_prefix_ngram/metadata.db")
DEFAULT_OUT = "docs/results/continuous/warm_start_variants.csv"
VARIANTS = {
    "default": {},
    "lr_x0.3": {"learning_rate_scale": 0.3},
    "lr_x3": {"learning_rate_scale": 3.0},
    "epochs_x2": {"epochs_scale": 2},
    "no_warm_start": {"warm_start": False},
    "replay_0.5": {"replay_share": 0.5},
    "replay_1": {"replay_share": 1.0},
    "window": {"replay_share": None, "warm_start": False},
    "replay_all": {"replay_share": None},
}
COLUMNS = ("eval_span", "train_spans", "base_model_spans", "representation", "variant",
           "learning_rate", "max_epochs", "best_val_auc", "diff_vs_default", "best_epoch",
           "epochs_run", "train_rows", "validation_rows", "seconds")


def trainer_runs(metadata_path: str):
    """[(custom_config, transform_graph uri, transformed Examples artifact, base model uri or
    None)] of every completed Trainer execution of the store, oldest first."""
    from ml_metadata.proto import metadata_store_pb2

    from pipeline import mlmd
    store = mlmd.open_store(metadata_path)
    executions = store.get_executions()
    component_of = mlmd.component_ids(store, executions)
    runs = []
    for e in sorted(executions, key=lambda e: e.id):
        if (component_of.get(e.id) != "Trainer"
                or e.last_known_state != metadata_store_pb2.Execution.COMPLETE):
            continue
        events = store.get_events_by_execution_ids([e.id])
        artifacts = {a.id: a for a in store.get_artifacts_by_id([ev.artifact_id for ev in events])}
        inputs = {ev.path.steps[0].key: artifacts[ev.artifact_id] for ev in events
                  if ev.type == metadata_store_pb2.Event.INPUT and ev.path.steps}
        runs.append((json.loads(e.custom_properties["custom_config"].string_value),
                     inputs["transform_graph"].uri, mlmd.tfx_artifact(store, inputs["examples"]),
                     inputs["base_model"].uri if "base_model" in inputs else None))
    return runs


def split_summary(graph_uri: str) -> dict:
    """The split summary CatalogTransform stored beside its graph."""
    from schemas.artifact_layout import TransformGraph
    import tensorflow as tf
    with tf.io.gfile.GFile(os.path.join(graph_uri, TransformGraph.SPLIT_SUMMARY_FILE)) as f:
        return json.load(f)


def eval_span_of(graph_uri: str) -> str:
    from schemas.artifact_layout import InteractionExamples
    return str(split_summary(graph_uri).get(InteractionExamples.EVAL_SPAN))


def earlier_spans(runs, eval_span: str):
    """The newest run per eval span among `runs`, other than `eval_span` (a resumed span may have
    trained twice)."""
    by_span = {}
    for run in runs:
        by_span[eval_span_of(run[1])] = run
    by_span.pop(eval_span, None)
    return [by_span[s] for s in sorted(by_span, key=int)]


def with_replay(train, earlier, share, seed: int):
    """`train` plus rows drawn without replacement from the `earlier` train splits: share x its
    rows (all of them when share is None)."""
    import numpy as np
    pool = {k: np.concatenate([e[k] for e in earlier]) for k in train}
    size = len(next(iter(pool.values())))
    n = size if share is None else min(size, int(round(share * len(next(iter(train.values()))))))
    pick = np.sort(np.random.default_rng(seed).choice(size, n, replace=False))
    return {k: np.concatenate([train[k], pool[k][pick]]) for k in train}


def variant_config(cfg, variant: dict):
    return dataclasses.replace(
        cfg, learning_rate=cfg.learning_rate * variant.get("learning_rate_scale", 1.0),
        max_epochs=cfg.max_epochs * variant.get("epochs_scale", 1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metadata_path", default=DEFAULT_METADATA)
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, of {list(VARIANTS)}")
    parser.add_argument("--eval_spans", default="",
                        help="comma-separated eval spans to run (default: every warm start)")
    args = parser.parse_args(argv)
    if not os.path.exists(args.metadata_path):
        print(f"warm_start_variants: no MLMD store at {args.metadata_path}; run "
              "`semids simulate --dataset ml1m --spans 6` first", file=sys.stderr)
        return 2
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or "default" not in names:
        parser.error(f"--variants: unknown {unknown} (known: {list(VARIANTS)}); 'default' is "
                     "required, the others are judged against it")

    from models.ranking import representations, training, warm_start
    from models.ranking.config import RankingConfig
    from models.ranking.model import LABEL_KEY
    from pipeline.evaluation import SCORING_BATCH_SIZE, TransformedSplits, make_dataset
    from pipeline.tables import append_csv_row, fmt_auc, read_csv_rows
    from schemas import features
    from schemas.artifact_layout import InteractionExamples
    import tensorflow as tf
    from tfx.utils import path_utils

    rows = read_csv_rows(args.out)
    done = {(r["eval_span"], r["variant"]) for r in rows}
    runs = trainer_runs(args.metadata_path)
    for index, (custom_config, graph_uri, examples, base_model) in enumerate(runs):
        if base_model is None:
            continue
        catalog = training.load_catalog_embeddings(graph_uri)
        cfg = training.with_catalog(RankingConfig.from_custom_config(custom_config), catalog)
        split = split_summary(graph_uri)
        eval_span = str(split.get(InteractionExamples.EVAL_SPAN))
        if args.eval_spans and eval_span not in args.eval_spans.split(","):
            continue
        todo = [n for n in names if (eval_span, n) not in done]
        if not todo:
            continue
        base_folder = warm_start.base_folder(path_utils.serving_model_path(base_model))
        base_config = warm_start.read_config(base_folder) or {}
        initial = warm_start.load_carried(  # as the Trainer restores them
            base_folder, base_config, warm_start.catalog_items(graph_uri)
            if warm_start.one_row_per_item(warm_start.model_config(cfg, {})) else None)
        data = TransformedSplits(examples, graph_uri)
        keys = (LABEL_KEY,) + representations.model_input_keys(
            cfg.representation, cfg.item_table_size, cfg.use_history, cfg.use_user_id)
        train, val = data.get(features.TRAIN, keys), data.get(features.VALIDATION, keys)
        earlier = [TransformedSplits(r[2], r[1]).get(features.TRAIN, keys)
                   for r in earlier_spans(runs[:index], eval_span)
                   ] if any("replay_share" in VARIANTS[n] for n in todo) else []
        default_auc = next((float(r["best_val_auc"]) for r in rows
                            if r["eval_span"] == eval_span and r["variant"] == "default"), None)
        for name in ["default"] + [n for n in todo if n != "default"]:
            if (eval_span, name) in done:
                continue
            variant = VARIANTS[name]
            c = variant_config(cfg, variant)
            tf.keras.backend.clear_session()
            tf.keras.utils.set_random_seed(c.seed)
            start = time.time()
            rows_in = (with_replay(train, earlier, variant["replay_share"], c.seed)
                       if "replay_share" in variant else train)
            _, summary = training.train_model(
                c, make_dataset(rows_in, c.batch_size, shuffle_seed=c.seed),
                make_dataset(val, SCORING_BATCH_SIZE), verbose=0, catalog_embeddings=catalog,
                initial_weights=initial if variant.get("warm_start", True) else None)
            auc = summary["best_val_auc"]
            if name == "default":
                default_auc = auc
            row = {"eval_span": eval_span, "train_spans": " ".join(map(str, split.get(
                       InteractionExamples.TRAIN_SPANS) or [])),
                   "base_model_spans": json.dumps((base_config.get("spans") or {}).get("train")),
                   "representation": cfg.representation, "variant": name,
                   "learning_rate": c.learning_rate, "max_epochs": c.max_epochs,
                   "best_val_auc": auc, "diff_vs_default": auc - default_auc,
                   "best_epoch": summary["best_epoch"], "epochs_run": summary["epochs_run"],
                   "train_rows": len(rows_in[LABEL_KEY]), "validation_rows": len(val[LABEL_KEY]),
                   "seconds": round(time.time() - start, 1)}
            append_csv_row(args.out, COLUMNS, row)
            rows.append({k: str(v) for k, v in row.items()})
            done.add((eval_span, name))
            print(f"span {eval_span} {name}: best validation AUC {fmt_auc(auc)} "
                  f"({auc - default_auc:+.4f} vs default), epoch {summary['best_epoch']}/"
                  f"{summary['epochs_run']}, {row['seconds']:.0f} s", flush=True)
    print_table(rows, names)
    return 0


def print_table(rows, names) -> None:
    """Per variant: best validation AUC per span and the mean difference from `default`."""
    spans = sorted({r["eval_span"] for r in rows}, key=int)
    print("\n| variant | " + " | ".join(f"span {s}" for s in spans) + " | mean diff vs default |")
    print("|---" * (len(spans) + 2) + "|")
    for name in names:
        cells, diffs = [], []
        for s in spans:
            r = next((r for r in rows if r["eval_span"] == s and r["variant"] == name), None)
            cells.append(f"{float(r['best_val_auc']):.4f}" if r else "")
            if r:
                diffs.append(float(r["diff_vs_default"]))
        mean = f"{sum(diffs) / len(diffs):+.4f}" if diffs else ""
        print(f"| {name} | " + " | ".join(cells) + f" | {mean} |")


if __name__ == "__main__":
    sys.exit(main())
