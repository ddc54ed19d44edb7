"""The new-item comparison over several base runs, each with its own held-out items: how far the
new-item figures move with which items are new, which the experiment's model seeds (one split)
do not vary.

    .venv/bin/python benchmarks/new_items_across_splits.py [--dataset ml100k] [--base_seeds 0,1,2]
        [--out_dir results/new_items_across_splits]

For each base seed: a base pipeline run with that seed (its own pipeline, `<name>_split<seed>`,
except seed 0, the experiment's base run), so the time split keeps its cuts but the held-out
items, the RQ-VAE and the SentencePiece models change; then every representation trained once
(B = the largest budget, with history, its tuned settings, model seed = the base seed) and
scored on that run's eval split, beside `baseline_user_rate` on the same rows. Prints each
AUC and its difference from the user rate and from random_hash on the same split; appends one
row per split and representation to `<out_dir>/rows.csv` and writes `<out_dir>/summary.json`.
A stopped run resumes; rows are keyed by the experiment's config_key (data, tuned settings, model
code), so rows of an earlier model or tuning are neither reused nor summarised.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

COLUMNS = ("dataset", "base_seed", "representation", "table_budget", "new_items", "new_item_rows",
           "auc_overall", "auc_new_items", "baseline_user_rate_auc_new_items",
           "baseline_user_item_rate_auc_overall", "hparams", "seconds", "config_key")


def split_config(base, seed: int):
    """The base run of `seed`: the experiment's own for seed 0, else its own pipeline."""
    if seed == base.seed:
        return base
    return dataclasses.replace(base, seed=seed, pipeline_name=f"{base.pipeline_name}_split{seed}",
                               results_dir=os.path.join(base.results_dir, f"split{seed}"))


def summarize(rows: list) -> dict:
    """Per representation over the splits: mean and range of its new-item AUC minus the user
    rate's and minus random_hash's on the same split."""
    by_split = {}
    for r in rows:
        by_split.setdefault(r["base_seed"], {})[r["representation"]] = r
    out = {}
    for rep in sorted({r["representation"] for r in rows}):
        vs_user, vs_hash, overall_vs = [], [], []
        for split in by_split.values():
            if rep not in split:
                continue
            r = split[rep]
            vs_user.append(float(r["auc_new_items"]) - float(r["baseline_user_rate_auc_new_items"]))
            overall_vs.append(float(r["auc_overall"])
                              - float(r["baseline_user_item_rate_auc_overall"]))
            if "random_hash" in split:
                vs_hash.append(float(r["auc_new_items"])
                               - float(split["random_hash"]["auc_new_items"]))

        def stats(v):
            return ({"mean": statistics.mean(v), "min": min(v), "max": max(v), "n": len(v)}
                    if v else None)
        out[rep] = {"new_items_minus_user_rate": stats(vs_user),
                    "new_items_minus_random_hash": stats(vs_hash),
                    "overall_minus_user_item_rate": stats(overall_vs)}
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml100k")
    parser.add_argument("--base_seeds", default="0,1,2")
    parser.add_argument("--representations", default=None)
    parser.add_argument("--out_dir", default=None)
    args = parser.parse_args(argv)

    from pipeline import pipeline as pipeline_lib
    from pipeline.baselines import (BASELINE_USER_ITEM_RATE, BASELINE_USER_RATE, baseline_scores,
                                    exact_auc)
    from pipeline.config import RunConfig
    from pipeline.experiment.data import (IS_NEW_ITEM, LABEL, predict_scores, prepare_base_run,
                                          run_features, train_in_memory)
    from pipeline.experiment.results import config_key
    from pipeline.tables import append_csv_row, read_csv_rows, upgrade_csv_header
    from schemas import features

    base = RunConfig(dataset=args.dataset)
    reps = (args.representations.split(",") if args.representations
            else list(features.REPRESENTATIONS))
    out_dir = args.out_dir or os.path.join(base.results_dir, "new_items_across_splits",
                                           base.dataset_name)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "rows.csv")
    upgrade_csv_header(path, COLUMNS)  # rows from before config_key: blank, so not counted
    # The experiment's fingerprint of the data, the tuned settings and the model code: rows of
    # another key were trained by another model and are neither reused nor summarised.
    run_key = config_key(base)

    def current_rows():
        return [r for r in read_csv_rows(path)
                if r["dataset"] == base.dataset_name and r.get("config_key") == run_key]

    done = {(r["base_seed"], r["representation"]) for r in current_rows()}
    budget = max(base.all_table_budgets)
    t0 = time.time()
    for seed in [int(s) for s in args.base_seeds.split(",")]:
        if all((str(seed), rep) in done for rep in reps):
            continue
        cfg = split_config(base, seed)
        _, data, catalog_embeddings = prepare_base_run(cfg, quiet=True)
        meta_keys = [LABEL, IS_NEW_ITEM, features.ITEM_ID_FINGERPRINT,
                     features.HISTORY_LABELS_DENSE, features.HISTORY_MASK]
        train_meta = data.get(features.TRAIN, [LABEL, features.ITEM_ID_FINGERPRINT])
        ev_meta = data.get(features.EVAL, meta_keys)
        labels = ev_meta[LABEL].reshape(-1)
        new = ev_meta[IS_NEW_ITEM].reshape(-1) == 1
        items = ev_meta[features.ITEM_ID_FINGERPRINT].reshape(-1)
        scores = baseline_scores(ev_meta[features.HISTORY_LABELS_DENSE],
                                 ev_meta[features.HISTORY_MASK], items,
                                 train_meta[features.ITEM_ID_FINGERPRINT], train_meta[LABEL],
                                 history_length=base.history_length)
        user_new = exact_auc(labels[new], scores[BASELINE_USER_RATE][new])
        user_item = exact_auc(labels, scores[BASELINE_USER_ITEM_RATE])
        print(f"base seed {seed}: {int(new.sum())} new-item rows of {np.unique(items[new]).size} "
              f"items; baseline_user_rate new items {user_new:.4f}, baseline_user_item_rate "
              f"overall {user_item:.4f}", flush=True)
        for rep in reps:
            if (str(seed), rep) in done:
                continue
            t1 = time.time()
            names = run_features(rep, budget, True)
            data.keep(set(names) | set(meta_keys))
            rcfg = pipeline_lib.ranking_config(dataclasses.replace(
                cfg, representation=rep, item_table_size=budget, use_history=True, seed=seed))
            model, _ = train_in_memory(rcfg, data.get(features.TRAIN, names),
                                       data.get(features.VALIDATION, names), catalog_embeddings)
            s = predict_scores(model, data.get(features.EVAL, names))
            row = {"dataset": base.dataset_name, "base_seed": seed, "representation": rep,
                   "table_budget": budget, "new_items": int(np.unique(items[new]).size),
                   "new_item_rows": int(new.sum()),
                   "auc_overall": round(exact_auc(labels, s), 6),
                   "auc_new_items": round(exact_auc(labels[new], s[new]), 6),
                   "baseline_user_rate_auc_new_items": round(user_new, 6),
                   "baseline_user_item_rate_auc_overall": round(user_item, 6),
                   "hparams": json.dumps(rcfg.hparams(), sort_keys=True),
                   "seconds": round(time.time() - t1, 1), "config_key": run_key}
            append_csv_row(path, COLUMNS, row)
            print(f"  {rep:<16} overall {row['auc_overall']:.4f} (vs user_item_rate "
                  f"{row['auc_overall'] - user_item:+.4f}), new items {row['auc_new_items']:.4f} "
                  f"(vs user rate {row['auc_new_items'] - user_new:+.4f}, ratio "
                  f"{row['auc_new_items'] / user_new:.4f}) {row['seconds']:.0f}s", flush=True)
            del model
    summary = summarize(current_rows())
    for rep, v in summary.items():
        parts = []
        for key in ("new_items_minus_user_rate", "new_items_minus_random_hash",
                    "overall_minus_user_item_rate"):
            if v[key]:
                parts.append(f"{key} {v[key]['mean']:+.4f} ({v[key]['min']:+.4f}.."
                             f"{v[key]['max']:+.4f}, {v[key]['n']} splits)")
        print(f"{rep:<16} " + "; ".join(parts))
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"({time.time() - t0:.0f}s)")
    return summary


if __name__ == "__main__":
    main()
