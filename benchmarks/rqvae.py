"""RqVaeTrainer at catalog scale: wall time and peak memory at 100k, 1M and 2M items, the codebook
size the sizing rule gives and the collision breaker's largest group at each size, and a
sample-trained RQ-VAE against a full-trained one at 100k items.

    .venv/bin/python benchmarks/rqvae.py            # resumable: finished runs in <work>/state.json
    .venv/bin/python benchmarks/rqvae.py --quick    # 4k / 10k / 20k items: a smoke run

Embeddings. 100k realistic synthetic items (data/synthetic.py, text_mode "realistic"), encoded
with the shipped MiniLM encoder (batches of texts of similar length; cached in <work>). Above
100k, items.csv's `embedding` column stands in for the encoder (the fast path; the issue allows
it at >= 1M items): each further item mixes two random encoded items, a + MIX_WEIGHT * b, plus
Gaussian noise (NOISE_SIGMA per dimension), renormalised. (Noisy copies of one item alone would
be near-duplicates: at 20k items from 4k, 59% collided on all L codes.) The breaker's groups at
1M and 2M depend on this stand-in; time and memory hardly do.

Each run is models/rqvae/trainer_module.run_fn, the RqVaeTrainer's module, in a fresh subprocess,
on an Examples folder like ContentEmbedder's output (uncompressed TFRecords of item_id +
embedding), with the defaults a user gets (RqVaeConfig; K from models/rqvae/sizing.py; early
stopping; a seeded sample above max_train_items). It reports the wall seconds of run_fn and the
process's peak RSS when run_fn returns. Then, as SemanticIdGen does, the process encodes every
item with the exported model: mean reconstruction error, the share of items whose L codes another
item shares (collision share, before the breaker) and the breaker's largest group.

Runs: full-100k (max_train_items above the catalog) and sample-100k (the default 65,536), each
with seeds 0, 1, 2, then 1M and 2M (seed 0). Prints each run, then the ratios sample/full at 100k
of the means over the seeds (collision share, reconstruction error; the issue asks within 5%)
and peak(2M)/peak(1M) (within 10%, and < 4 GiB). Writes
docs/perf/rqvae.json and adds rqvae_* keys to docs/perf/results.json (every other key kept).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import types

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

DEFAULT_WORK = os.path.join(REPO_ROOT, "outputs", "rqvae_bench")
DEFAULT_OUT = os.path.join(REPO_ROOT, "docs", "perf")
SIZES = {"full": (100_000, 1_000_000, 2_000_000), "quick": (4_000, 10_000, 20_000)}
NOISE_SIGMA = 0.025
MIX_WEIGHT = 0.5
SEED = 0
SEEDS = (0, 1, 2)
WRITE_CHUNK = 50_000


# --- embeddings --------------------------------------------------------------------------------

def encoded_items(work: str, num_items: int):
    """float32 [num_items, 384]: realistic synthetic items' texts through the shipped encoder
    (cached)."""
    import numpy as np
    path = os.path.join(work, f"encoded_{num_items}.npy")
    if os.path.exists(path):
        return np.load(path)
    from data import format as fm
    from data.synthetic import ITEM_TEXT_FIELDS, generate_synthetic
    from models.content_encoder import MiniLmEncoder, prepare_encoder_dir
    data = generate_synthetic(os.path.join(work, f"data_{num_items}"), 100, num_items, 1000,
                              seed=SEED, text_mode="realistic")
    _, rows = fm.read_items(data["paths"]["items"])
    texts = [" ".join(r[f] for f in ITEM_TEXT_FIELDS if r.get(f)) for _, r, _ in rows]
    encoder = MiniLmEncoder(prepare_encoder_dir(os.path.join(work, "encoder")))
    order = np.argsort([len(t) for t in texts], kind="stable")  # little padding per batch
    out = np.zeros((len(texts), 384), np.float32)
    t0 = time.time()
    for i in range(0, len(texts), 64):
        rows_i = order[i:i + 64]
        out[rows_i] = encoder.encode([texts[r] for r in rows_i])
        if i % 6400 == 0:
            print(f"  encoded {i:,} of {len(texts):,} ({time.time() - t0:.0f} s)", flush=True)
    np.save(path, out)
    return out


def write_examples(work: str, base, num_items: int) -> str:
    """An Examples split folder of `num_items` items: the encoded ones, then noisy copies."""
    import numpy as np
    import tensorflow as tf
    folder = os.path.join(work, f"examples_{num_items}", "Split-all")
    done = os.path.join(folder, "_DONE")
    if os.path.exists(done):
        return folder
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng([SEED, num_items])
    for part, start in enumerate(range(0, num_items, WRITE_CHUNK)):
        n = min(WRITE_CHUNK, num_items - start)
        idx = np.arange(start, start + n)
        emb = np.empty((n, base.shape[1]), np.float32)
        own = idx < base.shape[0]
        emb[own] = base[idx[own]]
        if (~own).any():
            m = int((~own).sum())
            a = base[rng.integers(0, base.shape[0], m)]
            b = base[rng.integers(0, base.shape[0], m)]
            mixed = a + MIX_WEIGHT * b + rng.normal(0, NOISE_SIGMA, a.shape).astype(np.float32)
            emb[~own] = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
        with tf.io.TFRecordWriter(os.path.join(folder, f"data_tfrecord-{part:05d}")) as w:
            for i, row in zip(idx.tolist(), emb):
                ex = tf.train.Example()
                ex.features.feature["item_id"].bytes_list.value.append(f"item{i}".encode())
                ex.features.feature["embedding"].float_list.value.extend(row.tolist())
                w.write(ex.SerializeToString())
    open(done, "w").close()
    return folder


# --- one run, in its own process ---------------------------------------------------------------

def child(folder: str, num_items: int, max_train_items: int, out_dir: str,
          seed: int = SEED) -> dict:
    import numpy as np
    import tensorflow as tf

    from components.semantic_id_gen.report import collision_stats
    from models.rqvae import sizing
    from models.rqvae import trainer_module
    from models.rqvae.config import RqVaeConfig
    k = sizing.codebook_size_for(num_items, RqVaeConfig().num_levels)
    fn_args = types.SimpleNamespace(
        train_files=[os.path.join(folder, "data_tfrecord-*")], eval_files=[],
        serving_model_dir=os.path.join(out_dir, "serving"),
        model_run_dir=os.path.join(out_dir, "run"), data_accessor=None,
        custom_config=dict(codebook_size=k, seed=seed, max_train_items=max_train_items))
    t0 = time.time()
    trainer_module.run_fn(fn_args)
    seconds = time.time() - t0
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    with open(os.path.join(fn_args.model_run_dir, trainer_module.SUMMARY_FILE)) as f:
        summary = json.load(f)
    # Every item through the exported model, as SemanticIdGen runs it.
    encode = tf.saved_model.load(fn_args.serving_model_dir).signatures["encode"]
    codes, errors = [], []
    for batch in trainer_module._read_batches(fn_args.train_files, 384, None, True):
        out = encode(embedding=tf.constant(batch[1]))
        codes.append(out["codes"].numpy())
        errors.append(out["reconstruction_error"].numpy())
    codes, errors = np.concatenate(codes), np.concatenate(errors)
    stats = collision_stats(codes)
    return {"num_items": num_items, "seed": seed, "codebook_size": k,
            "max_train_items": max_train_items,
            "trained_items": summary["num_items"], "epochs": summary["epochs"],
            "stopped_early": summary["stopped_early"], "seconds": round(seconds, 1),
            "peak_rss_gib": round(peak_gib, 3),
            "reconstruction_error": float(errors.mean()),
            "collision_share": stats["collisions_before_breaker"] / num_items,
            "largest_collision_group": stats["largest_collision_group"]}


# --- the benchmark -----------------------------------------------------------------------------

def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--work", default=DEFAULT_WORK)
    p.add_argument("--out", default=DEFAULT_OUT)
    p.add_argument("--child", nargs=5, help=argparse.SUPPRESS,
                   metavar=("FOLDER", "ITEMS", "MAX_TRAIN", "OUT_DIR", "SEED"))
    args = p.parse_args(argv)
    if args.child:
        folder, items, max_train, out_dir, seed = args.child
        print("RESULT " + json.dumps(child(folder, int(items), int(max_train), out_dir,
                                           int(seed))))
        return

    from models.rqvae.config import RqVaeConfig
    small, mid, big = SIZES["quick" if args.quick else "full"]
    work = args.work + ("_quick" if args.quick else "")
    os.makedirs(work, exist_ok=True)
    default_max = RqVaeConfig().max_train_items
    sample_max = default_max if not args.quick else small // 2
    # Sample against full at the smallest size over SEEDS (the collision share of a full-trained
    # RQ-VAE alone moves by ~10% between seeds); one seed at the larger sizes.
    runs = {}
    for seed in SEEDS:
        tail = "" if seed == SEED else f"-seed{seed}"
        runs[f"full-{small}{tail}"] = (small, 10 * small, seed)
        runs[f"sample-{small}{tail}"] = (small, sample_max, seed)
    runs.update({f"{mid}": (mid, sample_max, SEED), f"{big}": (big, sample_max, SEED)})
    state_path = os.path.join(work, "state.json")
    state = json.load(open(state_path)) if os.path.exists(state_path) else {}
    base = None
    for name, (n, max_train, seed) in runs.items():
        if name in state:
            print(f"{name:>14}: done before: {json.dumps(state[name])}")
            continue
        if base is None:
            base = encoded_items(work, small)
        folder = write_examples(work, base, n)
        out_dir = os.path.join(work, f"run_{name}")
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", folder,
                               str(n), str(max_train), out_dir, str(seed)],
                              capture_output=True, text=True, check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not lines:
            sys.exit(f"{name} failed:\n{proc.stderr[-3000:]}")
        state[name] = json.loads(lines[-1][len("RESULT "):])
        with open(state_path + ".tmp", "w") as f:
            json.dump(state, f, indent=2)
        os.replace(state_path + ".tmp", state_path)
        print(f"{name:>14}: {json.dumps(state[name])}", flush=True)

    def mean(kind, key):
        return statistics.mean(r[key] for name, r in state.items()
                               if name.startswith(f"{kind}-{small}"))

    for kind in ("full", "sample"):
        shares = [r["collision_share"] for name, r in state.items()
                  if name.startswith(f"{kind}-{small}")]
        print(f"{kind}-{small} collision share over seeds {list(SEEDS)}: "
              + " ".join(f"{x:.4%}" for x in shares))
    ratios = {
        "sample_vs_full_collision_share": mean("sample", "collision_share")
        / max(mean("full", "collision_share"), 1e-12),
        "sample_vs_full_reconstruction_error": mean("sample", "reconstruction_error")
        / mean("full", "reconstruction_error"),
        # seed 0's pair, run one after the other (other seeds may have run beside other work)
        "sample_vs_full_seconds": state[f"sample-{small}"]["seconds"]
        / state[f"full-{small}"]["seconds"],
        "peak_big_vs_mid": state[str(big)]["peak_rss_gib"] / state[str(mid)]["peak_rss_gib"],
    }
    for k, v in ratios.items():
        print(f"{k}={v:.3f}")
    if args.quick:
        return
    with open(os.path.join(args.out, "rqvae.json"), "w") as f:
        json.dump({"runs": state, "ratios": ratios, "noise_sigma": NOISE_SIGMA,
                   "mix_weight": MIX_WEIGHT,
                   "measured_on": time.strftime("%Y-%m-%d")}, f, indent=2)
    results_path = os.path.join(args.out, "results.json")
    results = json.load(open(results_path)) if os.path.exists(results_path) else {}
    results.update({
        "rqvae_seconds_100k_items": state[f"sample-{small}"]["seconds"],
        "rqvae_seconds_1m_items": state[str(mid)]["seconds"],
        "rqvae_peak_rss_gib_1m_items": state[str(mid)]["peak_rss_gib"],
        "rqvae_peak_rss_gib_2m_items": state[str(big)]["peak_rss_gib"],
        "rqvae_sample_vs_full_collision_share": round(ratios["sample_vs_full_collision_share"], 4),
        "rqvae_sample_vs_full_reconstruction": round(
            ratios["sample_vs_full_reconstruction_error"], 4),
    })
    with open(results_path, "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)


if __name__ == "__main__":
    main()
