"""ContentEmbedder's encoder against its compute limit (issue 13), on seeded realistic texts.

    .venv/bin/python benchmarks/encoder.py            # 50,000 items; start on 20,000 texts
    .venv/bin/python benchmarks/encoder.py --quick    # a smoke run (3,000 items), writes nothing
                                                      # under docs/perf
    [--items 50000] [--start_texts 20000] [--grid_texts 2000] [--repeats 3]
    [--encoder_workers W] [--encoder_threads T] [--skip_ml100k]

Texts: a synthetic catalog (data/synthetic.py, text_mode="realistic", seed 0: MiniLM token
lengths p50 ~20, p90 ~35, max ~70), each item's text as ContentEmbedder builds it (title, year,
genres). The same catalog feeds every figure:
  start      the starting commit's encoder loop (StartEncoder below, a faithful copy of
             models/content_encoder.py at c88a12f): batches of 64 texts in file order, each
             padded to its longest, onnxruntime's default threads (the cores, at most 8) and
             spinning; items/s over the first --start_texts texts (in --repeats chunks, one
             per repetition of the grid, interleaved with it), in this process. Only the
             encoder loop is timed (no Beam, no reading or writing), so the speed-up below is
             a lower bound of the component's.
  component  this issue's ContentEmbedder: the pipeline (pipeline/pipeline.py, LocalDagRunner,
             runner direct_multiprocess) run up to ContentEmbedder on the whole catalog, in a
             subprocess (benchmarks/scale.py's stages: ItemExampleGen first, untimed, then
             ContentEmbedder); items / the component's whole wall time (its MLMD execution:
             reading the items, Beam worker start-up, tokenising, encoding, writing). Its
             workers / calls / threads / spinning: pipeline/runners.py content_embedder_plan
             (above 10,000 items by default: one process in memory, as many single-threaded
             model calls at once as cores, spinning off).
  limit      onnxruntime session.run alone, on pre-tokenised, length-sorted batches of the
             shipped model (models/content_encoder.plan_batches; tensors built beforehand), over
             a seeded sample of --grid_texts texts: 1 worker x 2 threads and 2 workers x 1
             thread (2 processes, each with its half of the texts; items/s = all texts / the
             wall time until both finish), spinning on / off, padded-token budgets 1k, 2k, 4k,
             8k; the median of --repeats interleaved runs per cell; the limit is the best cell.
             Printed beside it, not part of the limit: "1x(2 calls)", one process running two
             single-threaded calls at once on one session (how the component uses the cores).
Also, unless --skip_ml100k: ML-100K's 1,682 item texts through StartEncoder (batches of 64 in
file order) and MiniLmEncoder (bundles of 512 in file order, as ContentEmbedder hands them):
the largest absolute difference of any embedding value; and the same between start and the
component's embeddings over the start texts.

Prints the onnxruntime options in effect (read back from the sessions), each figure,
encoder_speedup_vs_start=X (component / start items/s) and, last, ratio_vs_limit=X (limit /
component items/s). Writes --out (docs/perf/encoder.json) and adds encoder_ratio_vs_limit and
encoder_speedup_vs_start to --results (docs/perf/results.json), keeping its other keys.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import models  # noqa: E402,F401  (TF_USE_LEGACY_KERAS before TensorFlow: models/__init__.py)

import numpy as np  # noqa: E402

from components.content_embedder import core  # noqa: E402
from models import content_encoder  # noqa: E402
from models.content_encoder import (MODEL_OUTPUT, MiniLmEncoder, default_num_threads,  # noqa: E402
                                    plan_batches)

TEXT_FIELDS = ("title", "year", "genres")  # ContentEmbedder's default order
START_BATCH = 64  # the starting commit's RunConfig.embed_batch_size
BUDGETS = (1024, 2048, 4096, 8192)
LAYOUTS = ((1, 2), (2, 1))  # (workers, threads per worker): the limit's grid
CALLS_LAYOUT = (1, "2 calls")  # one process, two single-threaded calls at once: beside it
SPINNING = (True, False)
TARGET_RATIO = 1.2
TARGET_SPEEDUP = 1.4
DEFAULT_OUT = os.path.join(REPO_ROOT, "docs", "perf", "encoder.json")
DEFAULT_RESULTS = os.path.join(REPO_ROOT, "docs", "perf", "results.json")
DEFAULT_WORK = os.path.join(REPO_ROOT, "outputs", "encoder_bench")


# --- the starting commit's encoder, kept as the baseline -----------------------------------------

class StartEncoder:
    """MiniLmEncoder at the starting commit (c88a12f), copied: one model call per encode(),
    padded to the longest text of the call; onnxruntime threads = the cores (at most 8),
    inter-op 1, sequential, spinning left at onnxruntime's default (on)."""

    def __init__(self, encoder_dir: str, num_threads: Optional[int] = None,
                 max_tokens: int = content_encoder.MAX_TOKENS):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(num_threads or default_num_threads())
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(
            os.path.join(encoder_dir, content_encoder.ONNX_FILE), sess_options=options,
            providers=["CPUExecutionProvider"])
        self._input_names = [i.name for i in self._session.get_inputs()]
        self._tokenizer = Tokenizer.from_file(
            os.path.join(encoder_dir, content_encoder.TOKENIZER_FILE))
        pad = self._tokenizer.padding or {}
        self._tokenizer.enable_truncation(max_length=int(max_tokens))
        self._tokenizer.enable_padding(pad_id=pad.get("pad_id", 0),
                                       pad_type_id=pad.get("pad_type_id", 0),
                                       pad_token=pad.get("pad_token", "[PAD]"), length=None)

    def options_in_effect(self) -> Dict:
        return content_encoder.options_in_effect(self._session.get_session_options())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, 384), np.float32)
        encodings = self._tokenizer.encode_batch(texts)
        arrays = {
            "input_ids": np.asarray([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.asarray([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.asarray([e.type_ids for e in encodings], dtype=np.int64),
        }
        feeds = {name: arrays[name] for name in self._input_names}
        (hidden,) = self._session.run([MODEL_OUTPUT], feeds)
        mask = arrays["attention_mask"][:, :, None].astype(np.float32)
        summed = (hidden.astype(np.float32) * mask).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def encode_in_chunks(encoder, texts: Sequence[str], chunk: int) -> np.ndarray:
    """encoder.encode over consecutive chunks of `texts` (file order), stacked."""
    return np.concatenate([encoder.encode(texts[i:i + chunk])
                           for i in range(0, len(texts), chunk)])


# --- texts ----------------------------------------------------------------------------------------

def read_texts(items_csv: str, fields: Sequence[str] = TEXT_FIELDS) -> List[str]:
    with open(items_csv, encoding="utf-8", newline="") as f:
        return [core.item_text(row, fields) for row in csv.DictReader(f)]


def token_lengths(encoder_dir: str, texts: Sequence[str]) -> np.ndarray:
    encoder = MiniLmEncoder(encoder_dir, num_threads=1)
    return np.array([len(e.ids) for e in encoder.tokenize(texts)])


# --- the limit: session.run alone -----------------------------------------------------------------

def _grid_worker(conn, onnx_path: str, threads: int, token_ids: List[List[int]], pad_id: int,
                 budgets: Sequence[int], calls_at_once: int = 1) -> None:
    """A process holding one session per spinning setting and the padded tensors of every
    budget; runs a cell on request (its calls one after the other, or `calls_at_once` at a time
    on threads) and answers its seconds."""
    from concurrent.futures import ThreadPoolExecutor

    import onnxruntime as ort

    sessions = {spin: ort.InferenceSession(
        onnx_path, sess_options=content_encoder.session_options(threads, spin),
        providers=["CPUExecutionProvider"]) for spin in SPINNING}
    names = [i.name for i in sessions[True].get_inputs()]
    lengths = [len(t) for t in token_ids]
    feeds = {}
    for budget in budgets:
        calls = []
        for idx in plan_batches(lengths, budget):
            width = lengths[idx[-1]]
            ids = np.full((len(idx), width), pad_id, np.int64)
            mask = np.zeros((len(idx), width), np.int64)
            for r, i in enumerate(idx):
                ids[r, :lengths[i]] = token_ids[i]
                mask[r, :lengths[i]] = 1
            arrays = {"input_ids": ids, "attention_mask": mask,
                      "token_type_ids": np.zeros_like(ids)}
            calls.append({n: arrays[n] for n in names})
        feeds[budget] = calls
    for spin, session in sessions.items():  # warm-up: a few calls of every budget
        for budget in budgets:
            for f in feeds[budget][:: max(1, len(feeds[budget]) // 4)]:
                session.run([MODEL_OUTPUT], f)
    pool = ThreadPoolExecutor(calls_at_once) if calls_at_once > 1 else None
    conn.send({str(spin): content_encoder.options_in_effect(s.get_session_options())
               for spin, s in sessions.items()})
    while True:
        msg = conn.recv()
        if msg is None:
            break
        spin, budget = msg
        session = sessions[spin]
        start = time.perf_counter()
        if pool:
            list(pool.map(lambda f: session.run([MODEL_OUTPUT], f), feeds[budget]))
        else:
            for f in feeds[budget]:
                session.run([MODEL_OUTPUT], f)
        conn.send(time.perf_counter() - start)
    conn.close()


class LimitGrid:
    """The grid's worker processes (spawned once): one with 2 threads over every text, two with
    1 thread over a half each."""

    def __init__(self, encoder_dir: str, texts: Sequence[str], budgets: Sequence[int]):
        encoder = MiniLmEncoder(encoder_dir, num_threads=1)
        token_ids = [list(e.ids) for e in encoder.tokenize(texts)]
        pad_id = encoder._pad_id  # pylint: disable=protected-access
        onnx_path = os.path.join(encoder_dir, content_encoder.ONNX_FILE)
        self.num_texts = len(token_ids)
        halves = (token_ids[0::2], token_ids[1::2])  # seeded sample: the halves alike
        ctx = multiprocessing.get_context("spawn")
        self._workers: Dict = {}
        self.options: Dict = {}
        for workers, threads in LAYOUTS + (CALLS_LAYOUT,):
            parts = [token_ids] if workers == 1 else list(halves)
            calls = 2 if (workers, threads) == CALLS_LAYOUT else 1
            conns = []
            for part in parts:
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_grid_worker, daemon=True,
                                   args=(child, onnx_path, 1 if calls > 1 else threads, part,
                                         pad_id, budgets, calls))
                proc.start()
                conns.append((parent, proc))
            self._workers[(workers, threads)] = conns
        for layout, conns in self._workers.items():
            self.options[f"{layout[0]}x{layout[1]}"] = [c.recv() for c, _ in conns][0]

    def run(self, layout, spin: bool, budget: int) -> float:
        """items/s of one cell: every text / the wall time until all its workers finish."""
        conns = self._workers[layout]
        start = time.perf_counter()
        for conn, _ in conns:
            conn.send((spin, budget))
        for conn, _ in conns:
            conn.recv()
        return self.num_texts / (time.perf_counter() - start)

    def close(self):
        for conns in self._workers.values():
            for conn, proc in conns:
                conn.send(None)
                proc.join(timeout=30)


def cell_key(layout, spin: bool, budget: int) -> str:
    if layout == CALLS_LAYOUT:
        return f"1x(2 calls) spin=off budget={budget}"
    return f"{layout[0]}x{layout[1]} spin={'on' if spin else 'off'} budget={budget}"


def in_limit(key: str) -> bool:
    """Whether a cell is one of the issue's grid (the limit is the best of those)."""
    return "calls" not in key


def run_grid_rep(grid: LimitGrid, runs: Dict[str, List[float]], rep: int,
                 budgets: Sequence[int]) -> None:
    cells = [(layout, spin, budget) for layout in LAYOUTS for spin in SPINNING
             for budget in budgets] + [(CALLS_LAYOUT, False, budget) for budget in budgets]
    if rep % 2:
        cells = cells[::-1]  # interleaved: alternate the order
    for layout, spin, budget in cells:
        items_per_s = grid.run(layout, spin, budget)
        runs.setdefault(cell_key(layout, spin, budget), []).append(items_per_s)
        print(f"  limit rep {rep + 1} {cell_key(layout, spin, budget):<32} "
              f"{items_per_s:8.1f} items/s  (load {os.getloadavg()[0]:.1f})", flush=True)


# --- the component --------------------------------------------------------------------------------

def component_config(work_dir: str, num_items: int, workers: Optional[int],
                     threads: Optional[int]):
    from pipeline.config import RunConfig
    return RunConfig(
        pipeline_name="encoder-bench", dataset="synthetic", synthetic_text="realistic",
        synthetic_num_items=num_items, synthetic_num_users=100,
        synthetic_num_interactions=2000, seed=0,
        output_dir=work_dir, results_dir=os.path.join(work_dir, "results"),
        runner="direct_multiprocess", direct_num_workers=2,
        encoder_workers=workers, encoder_threads=threads)


def executed_components(metadata_path: str, since: float) -> Dict[str, tuple]:
    """{component id: (start, end) epoch seconds} of the executions that ran (not cached) and
    completed after `since` (each execution's MLMD create and last update times)."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    cfg = metadata_store_pb2.ConnectionConfig()
    cfg.sqlite.filename_uri = metadata_path
    cfg.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    store = metadata_store.MetadataStore(cfg)
    node_type_id = store.get_context_type("node").id
    out = {}
    for e in store.get_executions():
        if (e.last_known_state != metadata_store_pb2.Execution.COMPLETE
                or e.create_time_since_epoch / 1000.0 < since - 1.0):
            continue
        for ctx in store.get_contexts_by_execution(e.id):
            if ctx.type_id == node_type_id:
                out[ctx.name.split(".", 1)[-1]] = (e.create_time_since_epoch / 1000.0,
                                                   e.last_update_time_since_epoch / 1000.0)
    return out


def run_component_stage(config, until: str, log_path: str) -> Dict:
    """The pipeline up to `until` in a subprocess (benchmarks/scale.py's stage: a TFX partial
    run, LocalDagRunner, cache on), its process tree's memory sampled every 0.5 s:
    {"components": {id: {wall_s, peak_rss_gib}}, "stage_wall_s"}."""
    import subprocess

    from benchmarks.scale import TreeMemorySampler
    config_path = os.path.join(config.output_dir, "config.json")
    with open(config_path, "w") as f:
        f.write(config.to_json())
    started = time.time()
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open(log_path, "a") as log:
        proc = subprocess.Popen(
            [sys.executable, os.path.join(REPO_ROOT, "benchmarks", "scale.py"), "--_stage",
             config_path, until], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
        sampler = TreeMemorySampler(proc.pid)
        sampler.start()
        proc.wait()
        sampler.stop()
    components = {node: {"wall_s": round(end - begin, 2),
                         "peak_rss_gib": round(sampler.peak(begin, end) / float(1 << 30), 3)}
                  for node, (begin, end) in executed_components(config.metadata_path,
                                                                started).items()}
    if proc.returncode != 0 or until not in components:
        with open(log_path, errors="replace") as f:
            tail = "".join(f.readlines()[-40:])
        raise RuntimeError(f"{tail}\nthe stage up to {until} failed (rc {proc.returncode}); "
                           f"see {log_path}")
    return {"components": components, "stage_wall_s": round(time.time() - started, 1)}


def component_embeddings(pipeline_root: str, ids: Sequence[str]) -> Dict[str, np.ndarray]:
    """ContentEmbedder's output vectors of `ids` (read with TensorFlow, after every timing)."""
    import glob

    import tensorflow as tf

    from schemas import features
    files = glob.glob(os.path.join(pipeline_root, "ContentEmbedder", "embeddings", "*",
                                   f"Split-{features.SPLIT_ALL}", "*.gz"))
    wanted, out = set(ids), {}
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        f = tf.train.Example.FromString(record.numpy()).features.feature
        item_id = f[features.ITEM_ID].bytes_list.value[0].decode()
        if item_id in wanted:
            out[item_id] = np.asarray(f[features.ITEM_EMBEDDING].float_list.value, np.float32)
    return out


# --- main -----------------------------------------------------------------------------------------

def quantiles(lengths: np.ndarray) -> Dict:
    p = np.percentile(lengths, [50, 90, 99])
    return {"p50": float(p[0]), "p90": float(p[1]), "p99": float(p[2]),
            "max": int(lengths.max()), "mean": round(float(lengths.mean()), 2)}


def ml100k_diff(encoder_dir: str, tmp: str) -> Dict:
    from data.movielens import prepare_movielens
    texts = read_texts(prepare_movielens(os.path.join(tmp, "ml100k"))["paths"]["items"])
    start = encode_in_chunks(StartEncoder(encoder_dir), texts, START_BATCH)
    new = encode_in_chunks(MiniLmEncoder(encoder_dir), texts, core.DEFAULT_BATCH_SIZE)
    cos = np.sum(start * new, axis=1)
    return {"items": len(texts), "max_abs_diff": float(np.max(np.abs(start - new))),
            "min_cosine": float(cos.min())}


def update_results(path: str, ratio: float, speedup: float) -> None:
    """Adds the two keys to results.json (benchmarks/scale.py's), keeping every other key."""
    results = {}
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    results["encoder_ratio_vs_limit"] = ratio
    results["encoder_speedup_vs_start"] = speedup
    with open(path, "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)


def main(argv=None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="3,000 items, start on 1,000 texts, grid on 600: a smoke run whose "
                             "outputs go under --work_dir, not docs/perf")
    parser.add_argument("--items", type=int, default=None, help="component catalog (50,000)")
    parser.add_argument("--start_texts", type=int, default=None, help="start texts (20,000)")
    parser.add_argument("--grid_texts", type=int, default=None, help="limit grid sample (2,000)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per grid cell")
    parser.add_argument("--encoder_workers", type=int, default=None,
                        help="RunConfig.encoder_workers of the component (default: the plan's)")
    parser.add_argument("--encoder_threads", type=int, default=None,
                        help="RunConfig.encoder_threads of the component (default: the plan's)")
    parser.add_argument("--skip_ml100k", action="store_true")
    parser.add_argument("--work_dir", default=DEFAULT_WORK)
    parser.add_argument("--out", default=None, help=f"default {DEFAULT_OUT}")
    parser.add_argument("--results", default=None, help=f"default {DEFAULT_RESULTS}")
    args = parser.parse_args(argv)
    num_items = args.items or (3_000 if args.quick else 50_000)
    start_n = min(num_items, args.start_texts or (1_000 if args.quick else 20_000))
    grid_n = min(num_items, args.grid_texts or (600 if args.quick else 2_000))
    threads = args.encoder_threads  # quick: below 10k items, so ask for the large-catalog plan
    if args.quick and threads is None and args.encoder_workers is None:
        threads = 2
    work_dir = os.path.join(args.work_dir, "quick" if args.quick else "full")
    out = args.out or (os.path.join(work_dir, "encoder.json") if args.quick else DEFAULT_OUT)
    results_path = args.results or (os.path.join(work_dir, "results.json") if args.quick
                                    else DEFAULT_RESULTS)
    if os.path.isdir(work_dir):  # a fresh pipeline: the component must run, not hit the cache
        shutil.rmtree(work_dir)
    os.makedirs(work_dir)
    log_path = os.path.join(work_dir, "stages.log")
    report: Dict = {
        "what": "ContentEmbedder's encoder vs its compute limit (benchmarks/encoder.py "
                "docstring)",
        "command": "benchmarks/encoder.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "onnxruntime": __import__("onnxruntime").__version__},
        "targets": {"ratio_vs_limit_max": TARGET_RATIO, "speedup_vs_start_min": TARGET_SPEEDUP},
    }
    t0 = time.time()

    # 1. The catalog: the pipeline's own data and ItemExampleGen (untimed).
    from pipeline.runners import content_embedder_plan
    config = component_config(work_dir, num_items, args.encoder_workers, threads)
    plan = content_embedder_plan(config, num_items)
    print(f"catalog: {num_items:,} realistic synthetic items (seed 0); preparing the data and "
          f"ItemExampleGen ...", flush=True)
    run_component_stage(config, "ItemExampleGen", log_path)
    texts = read_texts(os.path.join(config.prepared_data_dir, "items.csv"))
    from pipeline.config import DEFAULT_ENCODER_NAME
    encoder_dir = content_encoder.validate_encoder_dir(
        os.path.join(config.output_dir, "encoders", DEFAULT_ENCODER_NAME))
    lengths = token_lengths(encoder_dir, texts)
    report["texts"] = {"items": len(texts), "token_lengths": quantiles(lengths)}
    print(f"MiniLM token lengths: {report['texts']['token_lengths']}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench_encoder_") as tmp:
        # 2. ML-100K: the new batching against the start's, value by value.
        if not args.skip_ml100k:
            report["ml100k"] = ml100k_diff(encoder_dir, tmp)
            print(f"ml100k_max_abs_diff_vs_start={report['ml100k']['max_abs_diff']:.3g} "
                  f"(min cosine {report['ml100k']['min_cosine']:.7f}, "
                  f"{report['ml100k']['items']:,} items)", flush=True)

        # 3. start (its texts in --repeats chunks) and the limit grid, interleaved around the
        # component: each repetition runs the whole grid and one chunk of the start texts.
        start_encoder = StartEncoder(encoder_dir)
        report["start"] = {"options_in_effect": start_encoder.options_in_effect()}
        print(f"start onnxruntime options in effect: "
              f"{report['start']['options_in_effect']}", flush=True)
        encode_in_chunks(start_encoder, texts[:START_BATCH * 2], START_BATCH)  # warm-up
        bounds = np.linspace(0, start_n, args.repeats + 1).astype(int)
        start_parts: List[np.ndarray] = []
        start_seconds: List[float] = []

        def run_start_chunk(rep: int) -> None:
            chunk = texts[bounds[rep]:bounds[rep + 1]]  # in file order
            began = time.perf_counter()
            start_parts.append(encode_in_chunks(start_encoder, chunk, START_BATCH))
            start_seconds.append(time.perf_counter() - began)
            print(f"  start chunk {rep + 1}: {len(chunk):,} texts in {start_seconds[-1]:.1f} s "
                  f"= {len(chunk) / start_seconds[-1]:.1f} items/s "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)

        rng = np.random.default_rng(0)
        sample = [texts[i] for i in np.sort(rng.choice(len(texts), grid_n, replace=False))]
        print(f"limit grid: session.run alone on a seeded sample of {grid_n:,} of the "
              f"{len(texts):,} texts, median of {args.repeats} interleaved runs per cell",
              flush=True)
        grid = LimitGrid(encoder_dir, sample, BUDGETS)
        for layout, options in grid.options.items():  # "1x2 calls": 1 thread per call
            print(f"limit onnxruntime options in effect ({layout}, spinning on / off): "
                  f"{options}", flush=True)
        runs: Dict[str, List[float]] = {}
        try:
            run_grid_rep(grid, runs, 0, BUDGETS)
            run_start_chunk(0)
            print(f"component: the pipeline up to ContentEmbedder on {num_items:,} items, "
                  f"runner direct_multiprocess; ContentEmbedder plan: worker processes "
                  f"{plan.workers}, model calls at once {plan.parallel_calls}, onnxruntime "
                  f"threads per call {plan.num_threads}, spinning {plan.allow_spinning}, "
                  f"beam args {plan.beam_args}, bundles of {config.embed_batch_size} texts, "
                  f"token budget {content_encoder.DEFAULT_TOKEN_BUDGET}", flush=True)
            stage = run_component_stage(config, "ContentEmbedder", log_path)
            for rep in range(1, args.repeats):
                run_start_chunk(rep)
                run_grid_rep(grid, runs, rep, BUDGETS)
        finally:
            grid.close()
        start_vectors = np.concatenate(start_parts)
        start_s = sum(start_seconds)
        report["start"].update(texts=start_n, seconds=round(start_s, 2),
                               chunk_seconds=[round(x, 2) for x in start_seconds],
                               items_per_s=round(start_n / start_s, 1), batch=START_BATCH)
        print(f"start: {start_n:,} texts in {start_s:.1f} s = {start_n / start_s:.1f} items/s "
              f"(batches of {START_BATCH} in file order, {args.repeats} chunks)", flush=True)

    comp = stage["components"]["ContentEmbedder"]
    component_ips = num_items / comp["wall_s"]
    report["component"] = {
        "items": num_items, "wall_s": comp["wall_s"], "peak_rss_gib": comp["peak_rss_gib"],
        "stage_wall_s": stage["stage_wall_s"], "items_per_s": round(component_ips, 1),
        "runner": config.runner, "workers": plan.workers,
        "parallel_calls": plan.parallel_calls, "num_threads": plan.num_threads,
        "allow_spinning": plan.allow_spinning, "beam_args": plan.beam_args,
        "bundle_texts": config.embed_batch_size,
        "token_budget": content_encoder.DEFAULT_TOKEN_BUDGET}
    print(f"component: ContentEmbedder {num_items:,} items in {comp['wall_s']:.1f} s = "
          f"{component_ips:.1f} items/s (its MLMD execution; stage {stage['stage_wall_s']} s "
          f"with the process start; peak {comp['peak_rss_gib']} GiB)", flush=True)
    with open(os.path.join(config.prepared_data_dir, "items.csv"), encoding="utf-8") as f:
        ids = [row["item_id"] for row, _ in zip(csv.DictReader(f), range(start_n))]
    got = component_embeddings(config.pipeline_root, ids)
    diff = max(float(np.max(np.abs(got[i] - start_vectors[k]))) for k, i in enumerate(ids))
    report["component"]["max_abs_diff_vs_start"] = diff
    print(f"component vs start embeddings, {len(ids):,} texts: max abs diff {diff:.3g}",
          flush=True)

    cells = {key: {"runs_items_per_s": [round(x, 1) for x in r],
                   "median_items_per_s": round(statistics.median(r), 1)}
             for key, r in runs.items()}
    best = max((k for k in cells if in_limit(k)), key=lambda k: cells[k]["median_items_per_s"])
    limit_ips = cells[best]["median_items_per_s"]
    report["limit"] = {"texts": grid_n, "repeats": args.repeats, "cells": cells, "best": best,
                       "items_per_s": limit_ips, "options_in_effect": grid.options}
    print(f"\n{'limit grid cell':<34} {'median items/s':>14}")
    for key, cell in cells.items():
        note = "  <- limit" if key == best else "" if in_limit(key) else "  (not in the limit)"
        print(f"{key:<34} {cell['median_items_per_s']:>14.1f}{note}")
    speedup = round(component_ips / report["start"]["items_per_s"], 3)
    ratio = round(limit_ips / component_ips, 3)
    report.update(encoder_speedup_vs_start=speedup, ratio_vs_limit=ratio,
                  load_average_1_5_15_min=[round(x, 2) for x in os.getloadavg()],
                  total_s=round(time.time() - t0, 1))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    update_results(results_path, ratio, speedup)
    print(f"\nstart {report['start']['items_per_s']:.1f} items/s, component "
          f"{component_ips:.1f} items/s, limit {limit_ips:.1f} items/s ({best}); wrote {out}, "
          f"{results_path}; {report['total_s'] / 60:.1f} min")
    print(f"encoder_speedup_vs_start={speedup}")
    print(f"ratio_vs_limit={ratio}")
    return report


if __name__ == "__main__":
    main()
