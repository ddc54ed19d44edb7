"""Where a trained ranking model wins or loses on new items: its logit split into its additive
parts, each part's AUC on the new-item rows, on eval (base run) and on the validation split of
the tuning run (whose validation holds new items), which is all tuning can see.

    .venv/bin/python benchmarks/new_item_decomposition.py [--dataset ml100k]
        [--representations ...] [--seed 0] [--other_base_seeds 1,2,3,4]
        [--out docs/results/new_item_decomposition.json]

The model (models/ranking/model.py) adds three parts: the user-rate offset (the log-odds of the
row's smoothed history rate; a fixed input where the tuned settings have `user_rate_offset`),
the item prior read through the representation, and the rest (the MLP and the linear path over
the candidate, its similarity to the history and, without the offset, the counts). Each
representation trains once per split at the largest budget, with history, with its tuned
settings (as the experiment does); `--other_base_seeds` adds the eval split of other base runs
(new_items_across_splits.py's: their own held-out items), trained on their own train split.
Prints, per representation and split, the new-item AUC of the model, of the user rate alone
(`baseline_user_rate`), of the user rate plus the prior, and of the user rate plus the rest,
each with its ratio to the user rate's; writes --out (JSON).

Why: issue 11's done-when asks a SID model for 0.705 on eval's new items. A part that helps on
validation but not on eval is one tuning cannot be blamed for keeping.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def decompose(model, inputs: dict) -> dict:
    """{part: [N] logit} of a trained RankingModel on `inputs` (name -> tensor): `model`, `prior`,
    `user` (the log-odds of the history's smoothed rate, whether or not the model adds it as its
    offset) and `rest` (the model's logit less its offset and prior)."""
    import tensorflow as tf

    from models.ranking import representations
    from models.ranking.history import HistoryPooling
    labels = inputs[representations.HISTORY_LABELS_KEY]
    mask = inputs[representations.HISTORY_MASK_KEY]
    # HistoryPooling's stats do not depend on the embeddings; one zero column stands in for them.
    stats = model.history_pooling(tf.zeros(tf.concat([tf.shape(labels), [1]], 0)), labels, mask)[2]
    user = stats[:, HistoryPooling.LOG_ODDS].numpy()
    logit = model(inputs).numpy()[:, 0]
    prior = (model.item_prior(inputs, role=representations.CANDIDATE).numpy()[:, 0]
             if model.item_prior is not None else np.zeros_like(logit))
    offset = user if model.user_rate_offset else 0.0
    return {"model": logit, "user": user, "prior": prior, "rest": logit - offset - prior}


def new_item_parts(labels: np.ndarray, parts: dict) -> dict:
    """AUCs on the new-item rows (`parts` already restricted to them) of the model and of the
    user rate with and without each of the other parts, and each part's std."""
    from pipeline.baselines import exact_auc
    u, p, r = parts["user"], parts["prior"], parts["rest"]
    return {"model": exact_auc(labels, parts["model"]),
            "user_rate": exact_auc(labels, u),
            "user_rate_plus_prior": exact_auc(labels, u + p),
            "user_rate_plus_rest": exact_auc(labels, u + r),
            "prior_alone": exact_auc(labels, p),
            "prior_std": float(np.std(p)), "rest_std": float(np.std(r))}


def measure(config, base_run, split: str, representation: str, seed: int) -> dict:
    """Trains `representation` on `base_run` (prepare_base_run's triple for `config`) and
    decomposes it on `split`'s new items."""
    import tensorflow as tf

    from pipeline import pipeline as pipeline_lib
    from pipeline.evaluation import IS_NEW_ITEM, LABEL
    from pipeline.experiment.data import train_in_memory
    from pipeline.experiment.run import run_features
    from schemas import features
    _, data, catalog = base_run
    budget = max(config.all_table_budgets)
    names = run_features(representation, budget, True)
    cfg = pipeline_lib.ranking_config(dataclasses.replace(
        config, representation=representation, item_table_size=budget, use_history=True,
        seed=seed))
    model, summary = train_in_memory(cfg, data.get(features.TRAIN, names),
                                     data.get(features.VALIDATION, names), catalog)
    rows = data.get(split, names)
    meta = data.get(split, [LABEL, IS_NEW_ITEM])
    new = meta[IS_NEW_ITEM].reshape(-1) == 1
    # Transform's ints are held compact (TransformedSplits); the model reads int64.
    inputs = {k: tf.constant(np.asarray(v)[new].astype(np.int64) if v.dtype.kind in "iu"
                             else np.asarray(v)[new])
              for k, v in rows.items() if k in model.input_keys()}
    out = new_item_parts(meta[LABEL].reshape(-1)[new], decompose(model, inputs))
    out.update(new_item_rows=int(new.sum()), best_epoch=summary["best_epoch"],
               hparams=cfg.hparams())
    return out


def main(argv=None) -> dict:
    from new_item_signal import (base_and_tuning_configs, other_split_configs, split_parser,
                                 write_json)
    from pipeline.experiment.data import prepare_base_run
    from schemas import features
    parser = split_parser(__doc__.split("\n")[0],
                          "also decompose on the eval new items of these base runs")
    parser.add_argument("--representations", nargs="+", default=list(features.REPRESENTATIONS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    t0 = time.time()
    base, tune = base_and_tuning_configs(args)
    splits = {"eval (base run)": (base, features.EVAL),
              f"validation (tuning run, validation_new_item_fraction="
              f"{args.validation_new_item_fraction})": (tune, features.VALIDATION)}
    for seed, cfg in other_split_configs(base, args).items():
        splits[f"eval (base seed {seed})"] = (cfg, features.EVAL)
    base_runs = {name: prepare_base_run(cfg, quiet=True) for name, (cfg, _) in splits.items()}
    results = {"dataset": base.dataset_name, "seed": args.seed, "with_history": True,
               "table_budget": max(base.all_table_budgets), "representations": {}}
    for rep in args.representations:
        results["representations"][rep] = {}
        for name, (cfg, split) in splits.items():
            r = measure(cfg, base_runs[name], split, rep, args.seed)
            results["representations"][rep][name] = r
            ur = r["user_rate"]
            print(f"{rep:<16} {name:<22.22} new items ({r['new_item_rows']} rows): "
                  + "  ".join(f"{k} {r[k]:.4f} ({r[k] / ur:.4f})" for k in (
                      "model", "user_rate", "user_rate_plus_prior", "user_rate_plus_rest")),
                  flush=True)
    print(f"(ratios to the user rate's AUC on the same rows; {time.time() - t0:.0f}s)")
    write_json(args.out, results)
    return results


if __name__ == "__main__":
    main()
