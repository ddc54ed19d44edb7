"""The dynamic batcher: concurrent requests merged, each answer its own request's."""
import shutil
import threading

import httpx
import numpy as np

from serving.batching import Batcher
from serving.conftest import instance, reference_scores
from serving.server import ModelServer
from serving.testing import free_port


def _arrays(n, seed):
    rng = np.random.default_rng(seed)
    rows = [instance(str(rng.integers(1000)), str(rng.integers(1000)),
                     [str(x) for x in rng.integers(1000, size=int(rng.integers(6)))],
                     [int(x) for x in rng.integers(2, size=5)]) for _ in range(n)]
    out = {}
    for k in rows[0]:
        vals = [r[k] for r in rows]
        out[k] = np.array(vals, dtype=np.int64) if k == "history_labels" else np.vectorize(
            lambda s: s.encode(), otypes=[object])(np.array(vals, dtype=object))
    return out


def test_concurrent_requests_are_batched_and_split_back(served):
    servable = served.registry.get()
    sig = servable.signature("serving_default")
    batcher = Batcher(max_batch_size=256, batch_timeout_s=0.02)
    requests = [sig.validate(_arrays(1 + i % 7, seed=i)) for i in range(24)]
    want = [sig.run(a)["score"] for a in requests]
    got = [None] * len(requests)
    barrier = threading.Barrier(len(requests))

    def call(i):
        with batcher.track():  # as the REST / gRPC handlers do
            barrier.wait()
            got[i] = batcher.run(servable, sig, requests[i])["score"]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    batcher.stop()
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-6)
    assert batcher.batches_run >= 1 and batcher.requests_batched >= 2


def test_server_with_batching_answers_each_request(tiny_models, in_process, tmp_path):
    shutil.copytree(tiny_models["c"], tmp_path / "1")
    rows = [instance(str(u), str(u * 7), [str(u + 1)], [1]) for u in range(40)]
    want = reference_scores(in_process["c"], rows)
    errors, got = [], {}
    with ModelServer(str(tmp_path), port=0, rest_api_port=free_port(), host="127.0.0.1",
                     enable_batching=True, batch_timeout_micros=5000) as server:
        url = f"http://127.0.0.1:{server.rest_api_port}/v1/models/semids:predict"

        def client(k):
            with httpx.Client(timeout=30) as http:
                for j in range(k, len(rows), 8):
                    size = 1 + j % 3
                    r = http.post(url, json={"instances": rows[j:j + size]})
                    if r.status_code != 200:
                        errors.append(r.text)
                    else:
                        got[j] = r.json()["predictions"]

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors
        for j, scores in got.items():
            np.testing.assert_allclose(scores, want[j:j + len(scores)], atol=1e-5)
        assert len(got) == len(rows) and server.batcher.requests_batched >= 2
