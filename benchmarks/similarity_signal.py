"""How much item similarity says about a new item's label, with no ranking model: a logistic
regression over a few similarity features beside the must-beat `baseline_user_rate`.

    .venv/bin/python benchmarks/similarity_signal.py [--dataset ml100k]
        [--validation_new_item_fraction 0.3] [--other_base_seeds 1,2,3,4]
        [--out docs/results/similarity_signal.json]

Issue 11 says a linear model over content-similarity features scores clearly above the user rate
on new items (the similarity of the candidate to the liked and to the disliked history items, and
a content prior from the candidate's nearest train items). This measures that on today's split,
through the item content embeddings (what dense_content reads) and through the Semantic IDs
(what the SID representations read), so the done-when's 0.705 on new items can be set against
what the data holds:

  * user: log-odds of `baseline_user_rate` (the row's history labels);
  * content: cosine similarity of the candidate to the liked / disliked history items (mean and
    max over each), and the prior of the candidate's NEIGHBOURS (20) most similar train items
    (their pooled positive rate shrunk to the global rate, an item's own rows left out);
  * sid: the same with the share of leading SID codes the candidate has in common with each
    history item, and new_item_signal.py's SID-prefix prior (k = 50).

Each feature set is fitted on the new-item rows of the validation split of the tuning run (its
validation holds new items: InteractionFeatures' validation_new_item_fraction) and scored on the
eval split's new-item rows of the base run: nothing is chosen on eval. `--other_base_seeds`
also scores the same fits on the eval new items of other base runs (new_items_across_splits.py's
splits: their own held-out items). Prints each AUC and its ratio to the user rate's on the same
rows; writes --out (JSON). Runs the base pipelines it reads (cached after the first time).
"""
from __future__ import annotations

import os
import sys
import time
from typing import Optional

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

NEIGHBOURS = 20
PRIOR_PSEUDO_ROWS = 5.0  # as baseline_item_rate's shrinkage
SID_PRIOR_K = 50
FEATURE_SETS = {
    "user rate": ("user",),
    "user rate + content similarity to history": ("user", "content_history"),
    "user rate + content neighbours' prior": ("user", "content_prior"),
    "user rate + content (both)": ("user", "content_history", "content_prior"),
    "user rate + SID similarity to history": ("user", "sid_history"),
    "user rate + SID-prefix prior": ("user", "sid_prior"),
    "user rate + SID (both)": ("user", "sid_history", "sid_prior"),
}


def pooled_similarity(sims: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[N, 4]: mean and max of `sims` ([N, H]) over the liked, then over the disliked history
    items (0 where the row has none of that label)."""
    mask = mask.astype(bool)
    labels = labels.astype(bool)
    cols = []
    for m in (mask & labels, mask & ~labels):
        n = m.sum(axis=1)
        cols.append(np.where(n > 0, (sims * m).sum(axis=1) / np.maximum(n, 1), 0.0))
        cols.append(np.where(n > 0, np.where(m, sims, -np.inf).max(axis=1), 0.0))
    return np.stack(cols, axis=1)


def common_prefix_share(candidate: np.ndarray, history: np.ndarray) -> np.ndarray:
    """[N, H]: the share of leading codes each history SID ([N, H, S]) has in common with the
    candidate's ([N, S])."""
    equal = history == candidate[:, None, :]
    return np.cumprod(equal, axis=2).sum(axis=2) / candidate.shape[1]


def neighbour_prior(embeddings: np.ndarray, train_rows: np.ndarray, train_labels: np.ndarray,
                    rows: np.ndarray, neighbours: int = NEIGHBOURS) -> np.ndarray:
    """[N]: for each row's catalog item, the positive rate of its `neighbours` most similar
    catalog items that have train rows (itself left out), pooled over their train rows and
    shrunk to the global train rate."""
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    n_items = embeddings.shape[0]
    pos = np.bincount(train_rows, weights=train_labels, minlength=n_items)
    cnt = np.bincount(train_rows, minlength=n_items).astype(np.float64)
    trained = np.flatnonzero(cnt > 0)
    sims = unit @ unit[trained].T  # [items, trained items]
    sims[trained, np.arange(trained.size)] = -np.inf  # an item is not its own neighbour
    top = trained[np.argsort(-sims, axis=1)[:, :neighbours]]  # [items, k]
    mu = train_labels.mean()
    prior = (pos[top].sum(axis=1) + PRIOR_PSEUDO_ROWS * mu) / (cnt[top].sum(axis=1)
                                                               + PRIOR_PSEUDO_ROWS)
    return prior[rows]


def row_features(data, split: str, catalog: np.ndarray) -> dict:
    """{feature group: [N, k] array} for the rows of `split`, with `labels` and `new` masks."""
    from new_item_signal import sid_prefix_prior

    from pipeline.baselines import BASELINE_USER_RATE, _logit, baseline_scores
    from pipeline.evaluation import IS_NEW_ITEM, LABEL
    from schemas import features as f
    train = data.get(f.TRAIN, [LABEL, f.ITEM_SID, f.ITEM_ID_FINGERPRINT, f.ITEM_CATALOG_ROW])
    rows = data.get(split, [LABEL, f.ITEM_SID, f.ITEM_ID_FINGERPRINT, IS_NEW_ITEM,
                            f.ITEM_CATALOG_ROW, f.HISTORY_LABELS_DENSE, f.HISTORY_MASK,
                            f.HISTORY_CATALOG_ROW, f.HISTORY_SID])
    labels = rows[LABEL].reshape(-1).astype(np.float64)
    train_labels = train[LABEL].reshape(-1).astype(np.float64)
    h_labels, h_mask = rows[f.HISTORY_LABELS_DENSE], rows[f.HISTORY_MASK]
    user = baseline_scores(h_labels, h_mask, rows[f.ITEM_ID_FINGERPRINT],
                           train[f.ITEM_ID_FINGERPRINT], train_labels)[BASELINE_USER_RATE]
    item_rows = rows[f.ITEM_CATALOG_ROW].reshape(-1).astype(np.int64)
    h_rows = rows[f.HISTORY_CATALOG_ROW].astype(np.int64)
    unit = catalog / np.maximum(np.linalg.norm(catalog, axis=1, keepdims=True), 1e-12)
    # Padding's catalog row is never read: the mask leaves it out of every pool.
    content_sims = np.einsum("ne,nhe->nh", unit[item_rows], unit[np.clip(h_rows, 0, None)])
    sids = rows[f.ITEM_SID].astype(np.int64)
    sid_sims = common_prefix_share(sids, rows[f.HISTORY_SID].astype(np.int64))
    return {
        "labels": labels,
        "new": rows[IS_NEW_ITEM].reshape(-1) == 1,
        "items": rows[f.ITEM_ID_FINGERPRINT].reshape(-1),
        "user": _logit(user)[:, None],
        "content_history": pooled_similarity(content_sims, h_labels, h_mask),
        "content_prior": _logit(neighbour_prior(
            catalog, train[f.ITEM_CATALOG_ROW].reshape(-1).astype(np.int64), train_labels,
            item_rows))[:, None],
        "sid_history": pooled_similarity(sid_sims, h_labels, h_mask),
        "sid_prior": _logit(sid_prefix_prior(train[f.ITEM_SID], train_labels, sids,
                                             SID_PRIOR_K))[:, None],
    }


def fit_and_score(fit: dict, score: dict, groups, other_splits: Optional[dict] = None) -> dict:
    """Logistic regression (standardised features, sklearn's default L2) fitted on `fit`'s
    new-item rows; AUC on `fit`'s and `score`'s new-item rows, its gain over the user rate on
    `score`'s new items resampled by item (new_item_signal.item_bootstrap), and AUC on the
    new-item rows of each of `other_splits` (base seed -> row_features of its eval split)."""
    from new_item_signal import item_bootstrap
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from pipeline.baselines import exact_auc

    def x(d):
        return np.concatenate([d[g] for g in groups], axis=1)[d["new"]]

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x(fit), fit["labels"][fit["new"]])
    new = score["new"]
    bootstrap = item_bootstrap(score["labels"][new], score["user"][new, 0],
                               model.decision_function(x(score)), score["items"][new])
    def auc(d):
        return exact_auc(d["labels"][d["new"]], model.decision_function(x(d)))

    return {"eval_gain_over_user_rate_item_bootstrap": bootstrap,
            "eval_new_items_other_splits": {str(seed): auc(d)
                                            for seed, d in (other_splits or {}).items()},
            "validation_new_items": auc(fit), "eval_new_items": auc(score),
            "coefficients": [float(c) for c in model[-1].coef_.reshape(-1)]}  # standardised


def main(argv=None) -> dict:
    from new_item_signal import (base_and_tuning_configs, other_split_configs, split_parser,
                                 write_json)
    args = split_parser(__doc__.split("\n")[0], "also score the fits on the eval new items of "
                        "these base runs").parse_args(argv)

    from pipeline.experiment.data import prepare_base_run
    from schemas import features

    t0 = time.time()
    base, tune = base_and_tuning_configs(args)
    _, tune_data, tune_catalog = prepare_base_run(tune, quiet=True)
    _, base_data, base_catalog = prepare_base_run(base, quiet=True)
    fit = row_features(tune_data, features.VALIDATION, tune_catalog)
    score = row_features(base_data, features.EVAL, base_catalog)
    other_splits = {}
    for seed, cfg in other_split_configs(base, args).items():
        _, data, catalog = prepare_base_run(cfg, quiet=True)
        other_splits[seed] = row_features(data, features.EVAL, catalog)
    results = {"dataset": base.dataset_name, "neighbours": NEIGHBOURS,
               "sid_prior_k": SID_PRIOR_K,
               "fitted_on": f"validation new-item rows of the tuning run "
                            f"(validation_new_item_fraction={args.validation_new_item_fraction})",
               "validation_new_item_rows": int(fit["new"].sum()),
               "eval_new_item_rows": int(score["new"].sum()), "feature_sets": {}}
    print(f"fitted on {results['validation_new_item_rows']} validation new-item rows, scored on "
          f"{results['eval_new_item_rows']} eval new-item rows")
    reference = None
    for name, groups in FEATURE_SETS.items():
        r = fit_and_score(fit, score, groups, other_splits)
        r["features"] = list(groups)
        results["feature_sets"][name] = r
        reference = reference or r
        gain = r["eval_gain_over_user_rate_item_bootstrap"]["gain_percentiles"]
        print(f"  {name:<44} validation {r['validation_new_items']:.4f} "
              f"({r['validation_new_items'] / reference['validation_new_items']:.4f})  "
              f"eval {r['eval_new_items']:.4f} "
              f"({r['eval_new_items'] / reference['eval_new_items']:.4f}); resampled items: "
              f"gain {gain[1]:+.4f} ({gain[0]:+.4f}..{gain[2]:+.4f})"
              + "".join(f"; base seed {seed} {auc:.4f} "
                        f"({auc / reference['eval_new_items_other_splits'][seed]:.4f})"
                        for seed, auc in r["eval_new_items_other_splits"].items()))
    print(f"(ratios to the user rate alone on the same rows; {time.time() - t0:.0f}s)")
    write_json(args.out, results)
    return results


if __name__ == "__main__":
    main()
