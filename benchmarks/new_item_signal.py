"""How much a new item's Semantic ID says about its label, with no model: the must-beat
`baseline_user_rate` against the same user rate plus a count-based prior over SID prefixes, on
the eval split of the base run and on the validation split of a tuning run whose validation holds
new items (InteractionFeatures' validation_new_item_fraction).

    .venv/bin/python benchmarks/new_item_signal.py [--dataset ml100k]
        [--validation_new_item_fraction 0.3] [--out docs/results/new_item_signal.json]

The SID-prefix prior of a row's item: the train split's positive rate of its 1-code prefix shrunk
(k pseudo-rows) to the global rate, of its 2-code prefix shrunk to that, and so on down to the
whole SID; a prefix no train row has keeps its parent's. A new item has no train row, so it gets
the rate of the longest prefix it shares with train items. Scores: the prior alone, and the log-odds
sum of `baseline_user_rate` and the prior (as baseline_user_item_rate sums the user and item rates).

Why: issue 11's done-when asks a SID model for 0.705 AUC on new items, where the user rate alone
gives 0.689 on eval. This measures whether the SIDs carry that signal on each split: tuning can
only find what the validation split shows. Prints each figure and its ratio to the user rate's
AUC on the same rows; writes --out (JSON). Runs the two base pipelines (cached after the first
time; the tuning run is its own pipeline, `<name>_tune<percent>`).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SHRINKAGE = (5, 20, 50)  # k: pseudo-rows of the parent prefix's rate


def _prefix_keys(sids: np.ndarray, level: int) -> np.ndarray:
    """[N] one hashable key per row: its first `level` codes as a byte string."""
    codes = np.ascontiguousarray(np.asarray(sids, np.int64)[:, :level])
    return codes.view(np.dtype((np.void, 8 * level))).reshape(-1)


def sid_prefix_prior(train_sids: np.ndarray, train_labels: np.ndarray, sids: np.ndarray,
                     k: float) -> np.ndarray:
    """[N] the hierarchical SID-prefix rate of each row of `sids` ([N, S] codes), from the train
    rows' SIDs ([M, S]) and labels ([M]): per level, (positives + k x parent rate) / (rows + k)
    over the train rows sharing the prefix; a prefix no train row has keeps its parent's rate."""
    from pipeline.baselines import _item_stats
    train_labels = np.asarray(train_labels, np.float64).reshape(-1)
    rate = np.full(sids.shape[0], train_labels.mean())
    for level in range(1, sids.shape[1] + 1):
        # A row whose level-l prefix some train row has also shares its level-(l-1) prefix with
        # them, so `rate` (its level-(l-1) rate) is the parent rate those rows shrink to.
        pos, n = _item_stats(_prefix_keys(train_sids, level), train_labels,
                             _prefix_keys(sids, level))
        rate = (pos + k * rate) / (n + k)
    return rate


def split_signal(data, split: str) -> dict:
    from pipeline.baselines import BASELINE_USER_RATE, _logit, baseline_scores, exact_auc
    from pipeline.evaluation import IS_NEW_ITEM, LABEL
    from schemas import features
    train = data.get(features.TRAIN, [LABEL, features.ITEM_SID, features.ITEM_ID_FINGERPRINT])
    rows = data.get(split, [LABEL, features.ITEM_SID, features.ITEM_ID_FINGERPRINT, IS_NEW_ITEM,
                            features.HISTORY_LABELS_DENSE, features.HISTORY_MASK])
    labels = rows[LABEL].reshape(-1)
    new = rows[IS_NEW_ITEM].reshape(-1) == 1
    user_rate = baseline_scores(rows[features.HISTORY_LABELS_DENSE], rows[features.HISTORY_MASK],
                                rows[features.ITEM_ID_FINGERPRINT],
                                train[features.ITEM_ID_FINGERPRINT], train[LABEL])[
        BASELINE_USER_RATE]
    out = {"split": split, "rows": int(labels.size), "new_item_rows": int(new.sum()),
           "baseline_user_rate": {"auc_overall": exact_auc(labels, user_rate),
                                  "auc_new_items": exact_auc(labels[new], user_rate[new])},
           "sid_prefix_prior": {}}
    for k in SHRINKAGE:
        prior = sid_prefix_prior(train[features.ITEM_SID], train[LABEL], rows[features.ITEM_SID], k)
        both = _logit(user_rate) + _logit(prior)
        out["sid_prefix_prior"][f"k={k}"] = {
            "prior_alone_auc_new_items": exact_auc(labels[new], prior[new]),
            "with_user_rate_auc_overall": exact_auc(labels, both),
            "with_user_rate_auc_new_items": exact_auc(labels[new], both[new])}
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml100k")
    parser.add_argument("--validation_new_item_fraction", type=float, default=0.3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    from pipeline.config import RunConfig
    from pipeline.experiment import tuning
    from pipeline.experiment.data import prepare_base_run
    from schemas import features

    t0 = time.time()
    base = RunConfig(dataset=args.dataset)
    tune = dataclasses.replace(
        tuning.tuning_config(base),
        validation_new_item_fraction=args.validation_new_item_fraction,
        pipeline_name=f"{base.pipeline_name}_tune{round(100 * args.validation_new_item_fraction)}")
    results = {"dataset": base.dataset_name, "shrinkage_k": list(SHRINKAGE)}
    for name, cfg, split in (("eval (base run)", base, features.EVAL),
                             (f"validation (tuning run, validation_new_item_fraction="
                              f"{args.validation_new_item_fraction})", tune, features.VALIDATION)):
        _, data, _ = prepare_base_run(cfg, quiet=True)
        r = split_signal(data, split)
        results[name] = r
        ur = r["baseline_user_rate"]["auc_new_items"]
        print(f"{name}: {r['rows']} rows, {r['new_item_rows']} on new items")
        print(f"  baseline_user_rate          new items {ur:.4f}  (overall "
              f"{r['baseline_user_rate']['auc_overall']:.4f})")
        for k, v in r["sid_prefix_prior"].items():
            both = v["with_user_rate_auc_new_items"]
            print(f"  {k:<5} SID-prefix prior alone new items {v['prior_alone_auc_new_items']:.4f};"
                  f" + user rate new items {both:.4f} (ratio to user rate {both / ur:.4f}), "
                  f"overall {v['with_user_rate_auc_overall']:.4f}")
    print(f"({time.time() - t0:.0f}s)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2, sort_keys=True)
            f.write("\n")
    return results


if __name__ == "__main__":
    main()
