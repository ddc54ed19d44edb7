"""Which RQ-VAE codebook size K gives the Semantic IDs that generalise best, on validation only.

    .venv/bin/python benchmarks/codebook_size.py [--dataset ml100k] [--codebook_sizes 12,16,32,64]
        [--seeds 0,1,2,3] [--out docs/results/codebook_size] [--tuned_hparams PATH]

For each K: the tuning base run (its validation holds new items, InteractionFeatures'
validation_new_item_fraction = 0.3; its own pipeline per K, `<name>_k<K>_tune30`, so the RQ-VAE,
SIDs and SentencePiece models are K's) and every SID representation trained at the largest table
budget, with history, with the settings tuned for the dataset (--tuned_hparams, default
models/ranking/tuned_hparams.json; each row records them), once per seed. Each is scored as a
tuning trial was before 2026-12-05: the mean of validation AUC overall and on the items new in
validation (validation AUC on existing items is recorded too). Eval is never read.

Why: with L = 4 levels, K = 64 puts ~26 of ML-100K's 1,682 items under a first code and makes
every longer prefix nearly an item of its own, so a new item shares one trained prefix with the
catalog; a smaller K gives it several. The paper's 2048 codes serve a catalog of millions.

Prints per K the mean over seeds of each representation and of all four, and the ratio to the
baseline K (--baseline_codebook_size, the sizing rule's 64) run in the same process; a K whose
collision-breaker codes do not fit in K symbols is reported and skipped. Resumable: rows.csv
(one row per K, representation and seed); summary.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

COLUMNS = ("codebook_size", "representation", "seed", "val_auc_overall", "val_auc_new_items",
           "objective", "best_epoch", "seconds", "hparams", "val_auc_existing_items")
# The study in docs/results/codebook_size/ chose K by tuning's first objective
# (pipeline/experiment/tuning.OBJECTIVE_DEFINITIONS); kept, so its rows stay comparable.
OBJECTIVE_DEFINITION = "overall_new"


def _ints(text: str):
    return [int(x) for x in text.split(",") if x]


def summarise(rows: list, baseline_k: int) -> dict:
    """Per K: each representation's mean / std over its seeds, and the mean objective and new-item
    AUC over the representations it has rows for (all four, unless a run was stopped)."""
    by_k: dict = {}
    for r in rows:
        by_k.setdefault(int(r["codebook_size"]), {}).setdefault(r["representation"], []).append(r)
    out = {}
    for k, reps in sorted(by_k.items()):
        entry = {}
        for rep, rs in sorted(reps.items()):
            col = {c: [float(r[c]) for r in rs] for c in ("val_auc_overall", "val_auc_new_items",
                                                          "objective", "val_auc_existing_items")
                   if all(r.get(c) for r in rs)}  # rows from before a column have it blank
            entry[rep] = {"seeds": sorted(int(r["seed"]) for r in rs),
                          **{f"{c}_mean": round(statistics.mean(v), 4) for c, v in col.items()},
                          **{f"{c}_std": round(statistics.stdev(v), 4) if len(v) > 1 else None
                             for c, v in col.items()}}
        means = [e["objective_mean"] for e in entry.values()]
        out[k] = {"representations": entry,
                  "mean_objective": round(statistics.mean(means), 4),
                  "mean_new_items": round(statistics.mean(
                      e["val_auc_new_items_mean"] for e in entry.values()), 4)}
    if baseline_k in out:
        for k, v in out.items():
            v["ratio_to_baseline_k"] = round(v["mean_objective"]
                                             / out[baseline_k]["mean_objective"], 4)
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml100k")
    parser.add_argument("--codebook_sizes", type=_ints, default=[12, 16, 32, 64])
    parser.add_argument("--baseline_codebook_size", type=int, default=64)
    parser.add_argument("--seeds", type=_ints, default=[0, 1, 2, 3])
    parser.add_argument("--out", default=os.path.join("docs", "results", "codebook_size"))
    parser.add_argument("--tuned_hparams", default=None,
                        help="the tuned settings' file (default: the committed one)")
    args = parser.parse_args(argv)

    from models.ranking.tuned import tuned_hparams
    from pipeline import pipeline as pipeline_lib
    from pipeline.baselines import BASELINE_USER_RATE, baseline_scores
    from pipeline.config import RunConfig
    from pipeline.experiment import tuning
    from pipeline.experiment.data import (IS_NEW_ITEM, LABEL, predict_scores, prepare_base_run,
                                          run_features, train_in_memory)
    from pipeline.tables import append_csv_row, read_csv_rows, upgrade_csv_header
    from schemas import features

    os.makedirs(args.out, exist_ok=True)
    rows_path = os.path.join(args.out, "rows.csv")
    upgrade_csv_header(rows_path, COLUMNS)  # rows from before a column: blank there
    t0 = time.time()
    skipped, user_rate = {}, {}
    for k in args.codebook_sizes:
        done = {(r["representation"], r["seed"]) for r in read_csv_rows(rows_path)
                if int(r["codebook_size"]) == k}
        todo = [(rep, s) for rep in features.SID_REPRESENTATIONS for s in args.seeds
                if (rep, str(s)) not in done]
        base = RunConfig(dataset=args.dataset, rqvae_codebook_size=k)
        base = dataclasses.replace(base, pipeline_name=f"{base.pipeline_name}_k{k}")
        cfg_tune = tuning.tuning_config(base)
        try:
            _, data, _ = prepare_base_run(cfg_tune, quiet=True)
        except (RuntimeError, ValueError) as e:  # e.g. more breaker codes than K symbols
            skipped[k] = str(e).splitlines()[-1][:300]
            print(f"K={k}: skipped: {skipped[k]}", flush=True)
            continue
        meta = data.get(features.VALIDATION, [LABEL, IS_NEW_ITEM, features.HISTORY_LABELS_DENSE,
                                              features.HISTORY_MASK, features.ITEM_ID_FINGERPRINT])
        new = meta[IS_NEW_ITEM].reshape(-1) == 1
        labels = meta[LABEL].reshape(-1)
        train_meta = data.get(features.TRAIN, [LABEL, features.ITEM_ID_FINGERPRINT])
        rate = baseline_scores(meta[features.HISTORY_LABELS_DENSE], meta[features.HISTORY_MASK],
                               meta[features.ITEM_ID_FINGERPRINT],
                               train_meta[features.ITEM_ID_FINGERPRINT],
                               train_meta[LABEL])[BASELINE_USER_RATE]
        # The same slices as a trial's, keyed as the baselines are elsewhere (auc_<slice>).
        user_rate[k] = {name[len("val_"):]: None if v is None else round(v, 4)
                        for name, v in tuning.trial_aucs(labels, rate, new).items()}
        budget = max(cfg_tune.all_table_budgets)
        for rep in features.SID_REPRESENTATIONS:
            names = run_features(rep, budget, True)
            data.keep(set(names) | {LABEL, IS_NEW_ITEM})
            train, val = data.get(features.TRAIN, names), data.get(features.VALIDATION, names)
            for seed in [s for r, s in todo if r == rep]:
                t1 = time.time()
                cfg = pipeline_lib.ranking_config(dataclasses.replace(
                    cfg_tune, representation=rep, item_table_size=budget, use_history=True,
                    seed=seed, **tuned_hparams(args.dataset, rep, args.tuned_hparams)))
                model, trained = train_in_memory(cfg, train, val)
                aucs = tuning.trial_aucs(labels, predict_scores(model, val), new)
                row = {"codebook_size": k, "representation": rep, "seed": seed,
                       **{name: None if v is None else round(v, 4) for name, v in aucs.items()},
                       "objective": round(tuning.objective(aucs, OBJECTIVE_DEFINITION), 4),
                       "best_epoch": trained["best_epoch"], "seconds": round(time.time() - t1),
                       "hparams": json.dumps(cfg.hparams(), sort_keys=True)}
                append_csv_row(rows_path, COLUMNS, row)
                print(f"K={k} {rep:<16} seed {seed}: val overall {row['val_auc_overall']}, new "
                      f"items {row['val_auc_new_items']}, existing items "
                      f"{row['val_auc_existing_items']} (best epoch {trained['best_epoch']}, "
                      f"{row['seconds']}s)", flush=True)

    summary = summarise([r for r in read_csv_rows(rows_path)
                         if int(r["codebook_size"]) in args.codebook_sizes
                         and int(r["seed"]) in args.seeds], args.baseline_codebook_size)
    print(f"\nmean over seeds {args.seeds} (validation overall / new items [/ existing items]); "
          f"objective = their mean; ratio to K={args.baseline_codebook_size}")
    for k, v in summary.items():
        cells = "  ".join(
            f"{rep} {e['val_auc_overall_mean']:.4f}/{e['val_auc_new_items_mean']:.4f}"
            + (f"/{e['val_auc_existing_items_mean']:.4f}" if "val_auc_existing_items_mean" in e
               else "") for rep, e in v["representations"].items())
        ur = user_rate.get(k, {}).get("auc_new_items")
        print(f"K={k:<3} objective {v['mean_objective']:.4f} (ratio "
              f"{v.get('ratio_to_baseline_k', float('nan')):.4f}), new items "
              f"{v['mean_new_items']:.4f} (baseline_user_rate {ur}): {cells}")
    best = max(summary, key=lambda k: summary[k]["mean_objective"]) if summary else None
    print(f"best K on validation: {best} ({time.time() - t0:.0f}s)")
    result = {"dataset": args.dataset, "seeds": args.seeds,
              "baseline_codebook_size": args.baseline_codebook_size,
              "objective": f"{tuning.OBJECTIVE_DEFINITIONS[OBJECTIVE_DEFINITION]} "
                           "(validation_new_item_fraction 0.3), averaged over the seeds, then "
                           "over the four SID representations",
              "baseline_user_rate": {str(k): v for k, v in user_rate.items()},
              "skipped": {str(k): v for k, v in skipped.items()},
              "codebook_sizes": {str(k): v for k, v in summary.items()},
              "best_codebook_size": best}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
        f.write("\n")
    return result


if __name__ == "__main__":
    main()
