"""The experiment runner (`semids experiment`, `make experiment`): every item representation x
table budgets x with/without user history x seeds, one ranking model trained per combination.

    run_experiment(base, representations, budgets, histories, seeds, out_dir)   (run.py)
    summarize(out_dir)                                                          (results.py)

1. The TFX pipeline runs once with `base` (cached when it already ran): it fixes the split, the
   Semantic IDs, the SentencePiece models and the Transform output for every budget in
   `base.all_table_budgets`. Nothing of that changes between runs.
2. The transformed train/validation/eval splits are read once into memory (per feature, only what
   the current representation needs: models/ranking/representations.model_input_keys) (data.py).
3. Each (representation, budget, history, seed) trains the Trainer's model
   (models/ranking/training.train_model: early stopping on the *validation* split; the seed
   sets the initialisation, dropout and the shuffling order), scores the eval split in-process and
   appends one row to results.csv at once, so a rerun skips finished runs (resumable) (run.py).
   `workers` (default 2 on 2+ cores) splits the runs over processes of one TF thread each.

Metrics are exact ROC AUCs (sklearn) on the transformed eval split, overall and by slice: new items
(is_new_item=1), existing items (is_new_item=0), the tail (is_tail_item=1: items with 1..4
training interactions, new items excluded), new users (is_new_user=1) and warm users
(is_new_user=0); a run with history also gets its probes (pipeline/probes.py: the AUC with the
history labels shuffled within each row and with no history). The must-beat baselines
(pipeline/baselines.py: user rate, item rate, their log-odds sum) are rows of results.csv too,
computed once. `evaluator_check` shows that this in-process path gives the pipeline Evaluator's
(TFMA) AUCs, slice by slice, for the pipeline Trainer's own model; `run_experiment` runs it on the
base configuration and writes `evaluator_check.json` (metrics.py).

Outputs in out_dir (default results/experiment/): results.csv (one row per run and per
baseline), table.md, summary.json, auc_vs_budget.png, base_config.json, evaluator_check.json
(results.py).
"""
from pipeline.experiment.results import (BASE_CONFIG_FILE, EVALUATOR_CHECK_FILE, PLOT_FILE,
                                         RESULTS_FILE, SUMMARY_FILE, TABLE_FILE, summarize)
from pipeline.experiment.run import DEFAULT_WORKERS, default_workers, run_experiment

__all__ = ["run_experiment", "DEFAULT_WORKERS", "default_workers", "summarize", "RESULTS_FILE",
           "TABLE_FILE", "SUMMARY_FILE", "PLOT_FILE", "BASE_CONFIG_FILE", "EVALUATOR_CHECK_FILE"]
