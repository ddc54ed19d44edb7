"""SpmTrainer at catalog scale: wall time and peak memory at 270k items and 400k impressions, and
how the vocabulary is used where the table budget is far below the catalog (the paper's regime).

    .venv/bin/python benchmarks/spm.py             # 270k items, 400k impressions
    .venv/bin/python benchmarks/spm.py --quick     # 20k items, 30k impressions: a smoke run

Inputs (seeded). Semantic IDs of L = 4 levels with K from the sizing rule (models/rqvae/sizing.py:
65 at 270k) plus the collision breaker, drawn level by level: each prefix has its own seeded
Zipf(ZIPF_CODES) order of the K next codes, so families differ in size and shape as an RQ-VAE's
do. (Not an RQ-VAE's codes: training one on 270k items is benchmarks/rqvae.py's job.)
Impressions: item popularity Zipf(ZIPF_ITEMS) over a seeded order of the items, so many items
have none: those play the new items.

The run is SpmTrainer's executor (DirectRunner, as `make run` runs it) on an ItemCatalog folder
and an Examples artifact (train split = the impressions) in a fresh subprocess: wall seconds of
Executor.Do and the process's peak RSS. Then, per budget, from spm_summary.json and the models:
pieces per SID and the share of single-piece items over the training impressions, the same over
the items with no impression (new items), and the share of <unk> pieces on new items.
Prints each figure; writes docs/perf/spm.json and adds spm_seconds_270k and
spm_peak_rss_gib_270k to docs/perf/results.json (every other key kept).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

DEFAULT_WORK = os.path.join(REPO_ROOT, "outputs", "spm_bench")
DEFAULT_OUT = os.path.join(REPO_ROOT, "docs", "perf")
SIZES = {"full": (270_000, 400_000), "quick": (20_000, 30_000)}
BUDGETS = (1024, 4096, 16384)
NUM_LEVELS = 4
ZIPF_CODES = 0.5  # 1.0 put 520 items on one SID path at 270k; an RQ-VAE: 3-19 (rqvae.json)
ZIPF_ITEMS = 1.0
SEED = 0


def semantic_ids(num_items: int, num_levels: int, k: int, rng):
    """[num_items, L + 1] int codes: L levels, each prefix with its own Zipf order of the next
    codes, then the collision breaker (0, 1, ... among items with equal L codes)."""
    import numpy as np
    weights = 1.0 / np.arange(1, k + 1) ** ZIPF_CODES
    weights /= weights.sum()
    codes = np.zeros((num_items, num_levels + 1), np.int64)
    groups = {(): np.arange(num_items)}
    for level in range(num_levels):
        nxt = {}
        for prefix, rows in groups.items():
            order = rng.permutation(k)  # this family's own ranking of the next codes
            picked = order[rng.choice(k, size=len(rows), p=weights)]
            codes[rows, level] = picked
            for code in np.unique(picked):
                nxt[prefix + (int(code),)] = rows[picked == code]
        groups = nxt
    for rows in groups.values():
        codes[rows, num_levels] = np.arange(len(rows))
    return codes


def prepare(work: str, num_items: int, num_impressions: int):
    """The ItemCatalog folder and the Examples artifact (uri), written once."""
    import numpy as np
    import tensorflow as tf

    from components.artifacts import ItemCatalog
    from components.semantic_id_gen import core as sid_core
    from components.testing import write_examples_artifact
    from models.rqvae import sizing
    from schemas import features
    catalog_dir = os.path.join(work, "catalog")
    examples_dir = os.path.join(work, "examples")
    done = os.path.join(work, "_PREPARED")
    k = sizing.codebook_size_for(num_items, NUM_LEVELS)
    if os.path.exists(done):
        return catalog_dir, examples_dir, k
    rng = np.random.default_rng(SEED)
    codes = semantic_ids(num_items, NUM_LEVELS, k, rng)
    ids = sorted(f"item{i:07d}".encode() for i in range(num_items))
    os.makedirs(catalog_dir, exist_ok=True)
    with open(os.path.join(catalog_dir, ItemCatalog.CATALOG_TSV), "wb") as f:
        f.write(sid_core.catalog_tsv(ids, codes.tolist()))
    with open(os.path.join(catalog_dir, ItemCatalog.METADATA_JSON), "w") as f:
        json.dump(sid_core.make_metadata(num_items, NUM_LEVELS, k, 384, True, codes.tolist()), f)
    popularity = 1.0 / np.arange(1, num_items + 1) ** ZIPF_ITEMS
    popularity /= popularity.sum()
    item_of_rank = rng.permutation(num_items)
    drawn = item_of_rank[rng.choice(num_items, size=num_impressions, p=popularity)]

    def example(item: int) -> bytes:
        ex = tf.train.Example()
        ex.features.feature[features.ITEM_ID].bytes_list.value.append(ids[item])
        ex.features.feature[features.LABEL].int64_list.value.append(1)
        return ex.SerializeToString()
    write_examples_artifact(examples_dir, {features.TRAIN: [example(i) for i in drawn.tolist()],
                                           features.VALIDATION: [example(0)],
                                           features.EVAL: [example(0)]})
    open(done, "w").close()
    return catalog_dir, examples_dir, k


def child(catalog_dir: str, examples_dir: str, out_dir: str) -> dict:
    from tfx.types import artifact_utils, standard_artifacts

    from components.artifacts import ItemCatalog, SpmModels
    from components.spm_trainer import core
    from components.spm_trainer.executor import Executor
    from schemas import features
    examples = standard_artifacts.Examples()
    examples.uri = examples_dir
    examples.split_names = artifact_utils.encode_split_names(list(features.SPLITS))
    catalog = ItemCatalog()
    catalog.uri = catalog_dir
    out = SpmModels()
    out.uri = out_dir
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()
    Executor().Do({core.EXAMPLES_KEY: [examples], core.CATALOG_KEY: [catalog]},
                  {core.SPM_MODELS_KEY: [out]},
                  {core.VOCAB_SIZES_KEY: json.dumps(list(BUDGETS)), core.MODEL_TYPE_KEY: "unigram",
                   core.SEED_KEY: SEED, core.MAX_SENTENCES_KEY: 1_000_000})
    return {"seconds": round(time.time() - t0, 1),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 3)}


def vocabulary_use(catalog_dir: str, examples_dir: str, out_dir: str, k: int) -> dict:
    """Per budget: pieces per SID and single-piece share on the impressions (spm_summary.json)
    and on the items with no impression, and <unk> pieces on those."""
    import numpy as np
    import tensorflow as tf

    from components.artifacts import ItemCatalog, SpmModels
    from components.spm_trainer import core, model_proto
    from models.sid import symbols as sid_symbols
    from schemas import features
    seen = set()
    for path in tf.io.gfile.glob(os.path.join(examples_dir, f"Split-{features.TRAIN}", "*")):
        for record in tf.data.TFRecordDataset(path, compression_type="GZIP"):
            ex = tf.train.Example.FromString(record.numpy())
            seen.add(ex.features.feature[features.ITEM_ID].bytes_list.value[0])
    new_sentences = []
    with open(os.path.join(catalog_dir, ItemCatalog.CATALOG_TSV), "rb") as f:
        for line in f:
            item_id, codes = core.parse_catalog_line(line, NUM_LEVELS + 1)
            if item_id not in seen:
                new_sentences.append(sid_symbols.sid_sentence(codes, k))
    with open(os.path.join(out_dir, SpmModels.SUMMARY_JSON)) as f:
        summary = json.load(f)
    out = {"num_items_with_impressions": len(seen), "num_new_items": len(new_sentences)}
    for budget in BUDGETS:
        stats = summary["models"][str(budget)]
        with open(os.path.join(out_dir, stats["model_file"]), "rb") as f:
            sp = model_proto.processor(f.read())
        pieces = sp.encode(new_sentences)
        lengths = np.array([len(p) for p in pieces])
        unk = sum(sum(1 for i in p if sp.is_unknown(i)) for p in pieces)
        out[str(budget)] = {
            "pieces_per_sid_impressions": round(stats["mean_pieces_per_sentence"], 3),
            "single_piece_share_impressions": round(stats["single_piece_sentence_share"], 4),
            "pieces_per_sid_new_items": round(float(lengths.mean()), 3),
            "single_piece_share_new_items": round(float((lengths == 1).mean()), 4),
            "unknown_piece_share_new_items": round(unk / max(int(lengths.sum()), 1), 6),
        }
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--work", default=DEFAULT_WORK)
    p.add_argument("--out", default=DEFAULT_OUT)
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(child(*args.child)))
        return
    num_items, num_impressions = SIZES["quick" if args.quick else "full"]
    work = args.work + ("_quick" if args.quick else "")
    os.makedirs(work, exist_ok=True)
    catalog_dir, examples_dir, k = prepare(work, num_items, num_impressions)
    out_dir = os.path.join(work, f"spm_models_{int(time.time())}")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", catalog_dir,
                           examples_dir, out_dir], capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.exit(f"SpmTrainer failed:\n{proc.stderr[-3000:]}")
    run = json.loads(lines[-1][len("RESULT "):])
    use = vocabulary_use(catalog_dir, examples_dir, out_dir, k)
    print(f"SpmTrainer on {num_items:,} items (K={k}), {num_impressions:,} impressions, "
          f"budgets {list(BUDGETS)}: {run['seconds']} s, peak RSS {run['peak_rss_gib']} GiB")
    print(f"items with impressions {use['num_items_with_impressions']:,}, new items "
          f"{use['num_new_items']:,}")
    for budget in BUDGETS:
        print(f"  B={budget}: {json.dumps(use[str(budget)])}")
    if args.quick:
        return
    with open(os.path.join(args.out, "spm.json"), "w") as f:
        json.dump({"num_items": num_items, "num_impressions": num_impressions, "codebook_size": k,
                   "budgets": list(BUDGETS), "run": run, "vocabulary_use": use,
                   "measured_on": time.strftime("%Y-%m-%d")}, f, indent=2)
    results_path = os.path.join(args.out, "results.json")
    results = json.load(open(results_path)) if os.path.exists(results_path) else {}
    results.update({"spm_seconds_270k": run["seconds"], "spm_peak_rss_gib_270k":
                    run["peak_rss_gib"]})
    with open(results_path, "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)


if __name__ == "__main__":
    main()
