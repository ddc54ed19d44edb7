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
On eval the new items are also split by origin (held out / first rated after the eval cut), and
on both splits they are resampled (`item_bootstrap`): how far the figures move with which items
happen to be new. `random_hash_new_items`: how many new items random_hash reads through a row
a train item reads at the largest budget (none once each catalog item has its own row: B > N).

Why: issue 11's done-when asks a SID model for 0.705 AUC on new items, where the user rate alone
gives 0.689 on eval. This measures whether the SIDs carry that signal on each split: tuning can
only find what the validation split shows. Prints each figure and its ratio to the user rate's
AUC on the same rows; writes --out (JSON). Runs the two base pipelines (cached after the first
time; the tuning run is its own pipeline, `<name>_tune<percent>`).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Optional

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SHRINKAGE = (5, 20, 50)  # k: pseudo-rows of the parent prefix's rate
BOOTSTRAP_K = 20  # the prior whose gain over the user rate is resampled by item
BOOTSTRAP_DRAWS = 300


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


def catalog_held_out(config) -> set:
    """The item-id fingerprints of the catalog items InteractionFeatures held out for eval
    (item_hash_unit < new_item_fraction): a new item in eval that is not one of them was first
    rated after the eval cut."""
    from components.interaction_features.core import item_hash_unit
    from data import format as data_format
    from models.ranking.preprocessing import fingerprint_item_ids
    from pipeline.inputs import prepare_dataset
    from schemas import features
    _, rows = data_format.read_items(
        data_format.table_file(prepare_dataset(config), data_format.ITEMS_TABLE))
    ids = [record[features.ITEM_ID] for _, record, _ in rows if record is not None]
    held = [i for i in ids if item_hash_unit(config.seed, i) < config.new_item_fraction]
    if not held:
        return set()
    return {int(f) for f in fingerprint_item_ids(np.array(held, dtype=object)).numpy()}


def item_bootstrap(labels, baseline, scores, items, draws: int = BOOTSTRAP_DRAWS,
                   seed: int = 0) -> dict:
    """AUC of `baseline`, and AUC(scores) − AUC(baseline), over `draws` resamples of the items
    (with replacement, each with all its rows): how much the figure moves with which items
    happen to be new, which a seed of the ranking model does not vary. 2.5 / 50 / 97.5
    percentiles."""
    from pipeline.baselines import exact_auc
    by_item = {u: np.flatnonzero(items == u) for u in np.unique(items)}
    keys = np.array(list(by_item))
    rng = np.random.default_rng(seed)
    base_aucs, gains = [], []
    for _ in range(draws):
        rows = np.concatenate([by_item[u] for u in rng.choice(keys, keys.size, replace=True)])
        a = exact_auc(labels[rows], baseline[rows])
        base_aucs.append(a)
        gains.append(exact_auc(labels[rows], scores[rows]) - a)
    q = (2.5, 50, 97.5)
    return {"items": int(keys.size), "draws": draws,
            "baseline_auc_percentiles": [float(v) for v in np.percentile(base_aucs, q)],
            "gain_percentiles": [float(v) for v in np.percentile(gains, q)],
            "gain_share_above_0": float(np.mean(np.array(gains) > 0))}


def random_hash_rows(arrays: dict, catalog_size: int, table_budget: int) -> np.ndarray:
    """The id-table row random_hash reads for each row's item: models/ranking/representations.
    RandomHash itself (one row per catalog item while the catalog leaves one to spare, else the
    hashed fingerprint), its one-column table set to the row numbers."""
    import tensorflow as tf

    from models.ranking import representations
    from schemas import features
    layer = representations.RandomHash(representations.RepresentationOptions(
        table_budget=table_budget, embedding_dim=1, catalog_size=catalog_size))
    inputs = {k: tf.constant(np.asarray(arrays[k]).reshape(-1), tf.int64)
              for k in (features.ITEM_ID_FINGERPRINT, features.ITEM_CATALOG_ROW)}
    layer(inputs)  # builds the table
    layer.table.embeddings.assign(np.arange(table_budget, dtype=np.float32)[:, None])
    return layer(inputs).numpy()[:, 0].astype(np.int64)  # float32 is exact below 2^24 rows


def hashed_rows_shared(rows: np.ndarray, items: np.ndarray, train_rows: np.ndarray,
                       table_budget: int) -> dict:
    """How many of the new `items` (fingerprints; `rows`: their random_hash rows) random_hash
    reads through a row that a train item also reads (`train_rows`): such a new item is scored
    with another item's embedding and item prior instead of an untrained row."""
    trained = np.unique(train_rows)
    shared = np.isin(rows, trained)
    return {"table_budget": int(table_budget), "items": int(np.unique(items).size),
            "items_in_a_trained_row": int(np.unique(items[shared]).size),
            "rows_in_a_trained_row": int(shared.sum())}


def split_signal(data, split: str, held_out: Optional[set] = None,
                 table_budget: Optional[int] = None, catalog_size: int = 0) -> dict:
    from pipeline.baselines import BASELINE_USER_RATE, _logit, baseline_scores, exact_auc
    from pipeline.evaluation import IS_NEW_ITEM, LABEL
    from schemas import features
    train = data.get(features.TRAIN, [LABEL, features.ITEM_SID, features.ITEM_ID_FINGERPRINT,
                                      features.ITEM_CATALOG_ROW])
    rows = data.get(split, [LABEL, features.ITEM_SID, features.ITEM_ID_FINGERPRINT, IS_NEW_ITEM,
                            features.ITEM_CATALOG_ROW, features.HISTORY_LABELS_DENSE,
                            features.HISTORY_MASK])
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
    items = rows[features.ITEM_ID_FINGERPRINT].reshape(-1)
    if table_budget:
        out["random_hash_new_items"] = hashed_rows_shared(
            random_hash_rows(rows, catalog_size, table_budget)[new], items[new],
            random_hash_rows(train, catalog_size, table_budget), table_budget)
    # Eval's new items are the held-out share plus the items first rated after the eval cut.
    origins = {}
    if held_out is not None:
        held = np.isin(items, np.array(sorted(held_out), dtype=items.dtype))
        origins = {"held_out": new & held, "first_rated_after_the_cut": new & ~held}
        out["new_items_by_origin"] = {
            name: {"rows": int(m.sum()), "items": int(np.unique(items[m]).size),
                   "baseline_user_rate_auc": exact_auc(labels[m], user_rate[m])}
            for name, m in origins.items()}
    for k in SHRINKAGE:
        prior = sid_prefix_prior(train[features.ITEM_SID], train[LABEL], rows[features.ITEM_SID], k)
        both = _logit(user_rate) + _logit(prior)
        out["sid_prefix_prior"][f"k={k}"] = {
            "prior_alone_auc_new_items": exact_auc(labels[new], prior[new]),
            "with_user_rate_auc_overall": exact_auc(labels, both),
            "with_user_rate_auc_new_items": exact_auc(labels[new], both[new])}
        for name, m in origins.items():
            out["new_items_by_origin"][name][f"with_prior_k={k}_auc"] = exact_auc(labels[m],
                                                                                 both[m])
        if k == BOOTSTRAP_K:
            out["item_bootstrap"] = item_bootstrap(labels[new], user_rate[new], both[new],
                                                   items[new])
    return out


def split_parser(description: str,
                 other_base_seeds_help: Optional[str] = None) -> argparse.ArgumentParser:
    """The options of the benchmarks that set eval (base run) against the validation split of a
    tuning run: --dataset, --validation_new_item_fraction, --out; and --other_base_seeds (read
    by other_split_configs) where `other_base_seeds_help` says what they are for."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--dataset", default="ml100k")
    parser.add_argument("--validation_new_item_fraction", type=float, default=0.3)
    parser.add_argument("--out", default=None)
    if other_base_seeds_help:
        parser.add_argument("--other_base_seeds", default="",
                            help=f"{other_base_seeds_help} (comma-separated; "
                                 f"new_items_across_splits.py's splits)")
    return parser


def other_split_configs(base, args) -> dict:
    """{base seed: RunConfig} of --other_base_seeds: new_items_across_splits.py's base runs,
    each holding out its own items."""
    from new_items_across_splits import split_config
    return {seed: split_config(base, seed)
            for seed in (int(v) for v in args.other_base_seeds.split(",") if v)}


def base_and_tuning_configs(args):
    """(base RunConfig, its tuning run's RunConfig) for split_parser's `args`."""
    from pipeline.config import RunConfig
    from pipeline.experiment import tuning
    base = RunConfig(dataset=args.dataset)
    return base, tuning.tuning_config(base, args.validation_new_item_fraction)


def write_json(path: Optional[str], results: dict) -> None:
    """Writes a benchmark's --out (nothing without one)."""
    if path:
        with open(path, "w") as f:
            json.dump(results, f, indent=2, sort_keys=True)
            f.write("\n")


def main(argv=None) -> dict:
    args = split_parser(__doc__.split("\n")[0]).parse_args(argv)

    from pipeline.experiment.data import prepare_base_run
    from schemas import features

    t0 = time.time()
    base, tune = base_and_tuning_configs(args)
    results = {"dataset": base.dataset_name, "shrinkage_k": list(SHRINKAGE)}
    for name, cfg, split in (("eval (base run)", base, features.EVAL),
                             (f"validation (tuning run, validation_new_item_fraction="
                              f"{args.validation_new_item_fraction})", tune, features.VALIDATION)):
        _, data, catalog = prepare_base_run(cfg, quiet=True)
        r = split_signal(data, split, catalog_held_out(cfg) if split == features.EVAL else None,
                         max(cfg.all_table_budgets), 0 if catalog is None else len(catalog))
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
        for origin, v in r.get("new_items_by_origin", {}).items():
            print(f"  new items {origin}: {v['rows']} rows of {v['items']} items, user rate "
                  f"{v['baseline_user_rate_auc']:.4f}, + prior k={BOOTSTRAP_K} "
                  f"{v[f'with_prior_k={BOOTSTRAP_K}_auc']:.4f}")
        h = r["random_hash_new_items"]
        print(f"  random_hash at B={h['table_budget']}: {h['items_in_a_trained_row']} of the "
              f"{h['items']} new items ({h['rows_in_a_trained_row']} of {r['new_item_rows']} rows)"
              f" share their hashed row with a train item")
        b = r["item_bootstrap"]
        lo, mid, hi = b["baseline_auc_percentiles"]
        glo, gmid, ghi = b["gain_percentiles"]
        print(f"  resampling the {b['items']} new items ({b['draws']} draws): user rate "
              f"{mid:.4f} ({lo:.4f}..{hi:.4f}); gain of the prior k={BOOTSTRAP_K} {gmid:+.4f} "
              f"({glo:+.4f}..{ghi:+.4f}), above 0 in {b['gain_share_above_0']:.0%} of draws")
    print(f"({time.time() - t0:.0f}s)")
    write_json(args.out, results)
    return results


if __name__ == "__main__":
    main()
