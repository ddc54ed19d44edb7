"""Serving latency and throughput: REST and gRPC (`semids serve`, a subprocess on 127.0.0.1) next
to the in-process signature call, in one run.

    .venv/bin/python benchmarks/serving.py [--model_dir DIR] [--requests N]
                                                               [--batching off|on|both]

Cells: {in-process, REST, gRPC} x {1, 100} candidates per request x {1, 8} concurrent clients
(closed loop: each client sends its next request when the answer arrives), against a server with
batching off and one with `--enable_batching` (`--batching both`, the default), the modes of a
cell alternating over `--rounds` rounds (pooled) so that other load on the machine hits all
alike. Printed: p50 / p99 latency, requests/s and candidates/s per cell, then each protocol's
overhead over the in-process call (p50 ratio and throughput ratio) and what batching changes at
8 clients. The model: `--model_dir`, else the newest pushed model under outputs/serving/semids,
else the tiny test model (serving/testing.py). The clients run in this process, the servers in
their own.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import models  # noqa: E402,F401  (TF_USE_LEGACY_KERAS before TensorFlow: models/__init__.py)

import numpy as np  # noqa: E402

from schemas import features  # noqa: E402
from serving.testing import free_port, newest_pushed_model, write_tiny_model  # noqa: E402


def make_rows(num_candidates: int, H: int):
    k = H // 2
    history = [str(i) for i in range(11, 11 + k)] + [features.HISTORY_PAD] * (H - k)
    labels = [i % 2 for i in range(k)] + [0] * (H - k)
    return [{features.USER_ID: "42", features.ITEM_ID: str(100 + i), features.HISTORY: history,
             features.HISTORY_LABELS: labels} for i in range(num_candidates)]


def run_closed_loop(call, clients: int, requests: int, warmup: int = 10):
    """Each of `clients` threads calls `call(state)` back to back; returns latencies (s) and wall
    time of the `requests` measured calls (after `warmup` per client)."""
    latencies, lock = [], threading.Lock()
    per_client = max(1, requests // clients)
    barrier = threading.Barrier(clients + 1)
    errors = []

    def worker():
        state = {}
        try:
            for _ in range(warmup):
                call(state)
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        barrier.wait()
        mine = []
        try:
            for _ in range(per_client):
                t = time.perf_counter()
                call(state)
                mine.append(time.perf_counter() - t)
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        with lock:
            latencies.extend(mine)
        barrier.wait()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    barrier.wait()
    wall = time.perf_counter() - start
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"benchmark calls failed: {errors[0]!r}")
    return np.array(latencies), wall


def start_server(base: str, enable_batching: bool):
    rest, grpc_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "pipeline.cli", "serve", "--model_base_path", base,
           "--model_name", "semids", "--port", str(grpc_port), "--rest_api_port", str(rest),
           "--host", "127.0.0.1", "--file_system_poll_wait_seconds", "60",
           "--enable_batching", "true" if enable_batching else "false"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=REPO))
    import httpx
    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"semids serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{rest}/v1/models/semids", timeout=1).status_code == 200:
                return proc, rest, grpc_port
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("semids serve did not become ready")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", default=None)
    parser.add_argument("--requests", type=int, default=400,
                        help="measured requests per cell (default 400)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds per cell, pooled (default 3)")
    parser.add_argument("--batching", choices=("off", "on", "both"), default="both")
    parser.add_argument("--candidates", default="1,100")
    parser.add_argument("--clients", default="1,8")
    args = parser.parse_args(argv)

    import grpc
    import httpx
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from serving.model_registry import import_tensorflow_text

    tmp = tempfile.mkdtemp(prefix="semids-bench-")
    model_dir = args.model_dir or newest_pushed_model(os.path.join(REPO, "outputs", "serving",
                                                                   "semids"))
    if model_dir is None:
        model_dir = write_tiny_model(os.path.join(tmp, "tiny"))
        model_desc = "tiny test model (no pushed model found)"
    else:
        model_desc = os.path.relpath(os.path.abspath(model_dir), REPO)
    base = os.path.join(tmp, "base")
    os.makedirs(base)
    os.symlink(os.path.abspath(model_dir), os.path.join(base, "1"))

    import_tensorflow_text()
    fn = tf.saved_model.load(model_dir).signatures[features.SERVING_DEFAULT_SIGNATURE]
    _, specs = fn.structured_input_signature
    H = specs[features.HISTORY].shape[1]
    candidates = [int(x) for x in args.candidates.split(",")]
    client_counts = [int(x) for x in args.clients.split(",")]
    print(f"model: {model_desc} (history length {H}); {os.cpu_count()} CPUs; "
          f"{args.requests} measured requests per cell", flush=True)

    rows = {n: make_rows(n, H) for n in candidates}
    tensors = {n: {k: tf.constant([r[k] for r in rows[n]], dtype=specs[k].dtype) for k in specs}
               for n in candidates}
    bodies = {n: json.dumps({"instances": rows[n]}).encode() for n in candidates}
    protos = {}
    for n in candidates:
        req = predict_pb2.PredictRequest()
        req.model_spec.name = "semids"
        req.model_spec.signature_name = features.SERVING_DEFAULT_SIGNATURE
        for k in specs:
            req.inputs[k].CopyFrom(tf.make_tensor_proto([r[k] for r in rows[n]],
                                                        dtype=specs[k].dtype))
        protos[n] = req

    def inproc_call(n):
        def call(state):
            fn(**tensors[n])[features.PREDICTION_KEY].numpy()
        return call

    def rest_call(url, n):
        def call(state):
            http = state.get("http") or state.setdefault("http", httpx.Client(timeout=60))
            r = http.post(url, content=bodies[n], headers={"content-type": "application/json"})
            if r.status_code != 200 or len(r.json()["predictions"]) != n:
                raise RuntimeError(f"REST answered {r.status_code}: {r.text[:200]}")
        return call

    def grpc_call(target, n):
        def call(state):
            stub = state.get("stub") or state.setdefault(
                "stub", prediction_service_pb2_grpc.PredictionServiceStub(
                    grpc.insecure_channel(target)))
            out = stub.Predict(protos[n], timeout=60)
            if tf.make_ndarray(out.outputs[features.PREDICTION_KEY]).size != n:
                raise RuntimeError("gRPC answer has the wrong size")
        return call

    # Both servers run side by side (only the measured one is busy) and the cells of one
    # (candidates, clients) pair alternate round by round, so the machine's drifting load
    # (other processes) hits every mode alike.
    flags = {"off": ["off"], "on": ["on"], "both": ["off", "on"]}[args.batching]
    servers = {}
    try:
        for flag in flags:
            proc, rest_port, grpc_port = start_server(base, flag == "on")
            servers[flag] = (proc, f"http://127.0.0.1:{rest_port}/v1/models/semids:predict",
                             f"127.0.0.1:{grpc_port}")
        modes = [("in-process", "-")] + [(m, f) for f in flags for m in ("REST", "gRPC")]
        results = []
        for n in candidates:
            for c in client_counts:
                pooled = {mode: ([], 0.0) for mode in modes}
                for rnd in range(args.rounds):
                    for mode, flag in modes:
                        if mode == "in-process":
                            call = inproc_call(n)
                        elif mode == "REST":
                            call = rest_call(servers[flag][1], n)
                        else:
                            call = grpc_call(servers[flag][2], n)
                        lat, wall = run_closed_loop(call, c, args.requests // args.rounds,
                                                    warmup=5 if rnd == 0 else 2)
                        lats, walls = pooled[(mode, flag)]
                        pooled[(mode, flag)] = (lats + list(lat), walls + wall)
                for (mode, flag), (lats, wall) in pooled.items():
                    lat = np.array(lats)
                    r = dict(mode=mode, batching=flag, candidates=n, clients=c,
                             p50_ms=float(np.percentile(lat, 50) * 1e3),
                             p99_ms=float(np.percentile(lat, 99) * 1e3), rps=len(lat) / wall)
                    results.append(r)
                    print(f"  {mode:<10} batching={flag:<3} candidates={n:<3} clients={c}: "
                          f"p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  "
                          f"{r['rps']:.0f} req/s", flush=True)
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    print("\n| mode | batching | candidates | clients | p50 ms | p99 ms | req/s | candidates/s |"
          " p50 / in-process | in-process req/s / req/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    base_cells = {(r["candidates"], r["clients"]): r for r in results if r["mode"] == "in-process"}
    for r in results:
        ref = base_cells[(r["candidates"], r["clients"])]
        print(f"| {r['mode']} | {r['batching']} | {r['candidates']} | {r['clients']} | "
              f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['rps']:.0f} | "
              f"{r['rps'] * r['candidates']:.0f} | {r['p50_ms'] / ref['p50_ms']:.2f}x | "
              f"{ref['rps'] / r['rps']:.2f}x |")
    print()
    for mode in ("REST", "gRPC"):
        for r in (x for x in results if x["mode"] == mode):
            ref = base_cells[(r["candidates"], r["clients"])]
            print(f"overhead {mode}/in-process batching={r['batching']} candidates="
                  f"{r['candidates']} clients={r['clients']}: p50 ratio "
                  f"{r['p50_ms'] / ref['p50_ms']:.2f}, throughput ratio "
                  f"{ref['rps'] / r['rps']:.2f}")
    if args.batching == "both":
        for mode in ("REST", "gRPC"):
            for n in candidates:
                cells = {r["batching"]: r for r in results if r["mode"] == mode
                         and r["candidates"] == n and r["clients"] == max(client_counts)}
                if {"off", "on"} <= set(cells):
                    print(f"batching {mode} candidates={n} clients={max(client_counts)}: "
                          f"{cells['off']['rps']:.0f} -> {cells['on']['rps']:.0f} req/s "
                          f"({cells['on']['rps'] / cells['off']['rps']:.2f}x), p99 "
                          f"{cells['off']['p99_ms']:.1f} -> {cells['on']['p99_ms']:.1f} ms")
    return results


if __name__ == "__main__":
    main()
