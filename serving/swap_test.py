"""A new version appears while clients send requests: no request fails, every answer comes from
the old or the new version, and a half-written version directory is ignored until complete."""
import os
import shutil
import threading
import time

import httpx

from serving.conftest import instance, reference_scores
from serving.server import ModelServer
from serving.testing import free_port

NUM_CLIENTS = 4


def _wait(predicate, timeout_s=30.0, what=""):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_version_swap_under_load_loses_no_request(tiny_models, in_process, tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    shutil.copytree(tiny_models["a"], base / "1")
    inst = instance(user="7", item="99", history=["3", "4", "5"], labels=[1, 0, 1])
    expected = {m: float(reference_scores(in_process[m], [inst])[0]) for m in ("a", "b", "c")}
    assert len({round(v, 5) for v in expected.values()}) == 3
    version_of = {round(v, 5): m for m, v in expected.items()}

    server = ModelServer(str(base), "semids", port=0, rest_api_port=free_port(), host="127.0.0.1",
                         file_system_poll_wait_seconds=0.1).start()
    url = f"http://127.0.0.1:{server.rest_api_port}/v1/models/semids:predict"
    stop = threading.Event()
    results = [[] for _ in range(NUM_CLIENTS)]  # per client: (status, model or error text)

    def client(out):
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                try:
                    r = http.post(url, json={"instances": [inst]})
                except httpx.HTTPError as e:
                    out.append((-1, repr(e)))
                    continue
                if r.status_code != 200:
                    out.append((r.status_code, r.text))
                    continue
                score = r.json()["predictions"][0]
                out.append((200, version_of.get(round(score, 5), f"unexpected score {score}")))

    def seen(model):
        return any(m == model for res in results for _, m in list(res))

    threads = [threading.Thread(target=client, args=(results[i],)) for i in range(NUM_CLIENTS)]
    try:
        for t in threads:
            t.start()
        _wait(lambda: all(len(r) >= 5 for r in results), what="first answers")
        # half-written: everything but saved_model.pb; it must be ignored until complete
        shutil.copytree(tiny_models["b"], base / "2",
                        ignore=shutil.ignore_patterns("saved_model.pb"))
        time.sleep(0.6)  # several polls
        assert server.registry.versions() == [1]
        shutil.copy(os.path.join(tiny_models["b"], "saved_model.pb"), base / "2")
        _wait(lambda: seen("b"), what="version 2's answers")
        _wait(lambda: sum(len(r) for r in results) >= 40, what="more answers")
        # the deployer's way: write under a temporary name, then rename
        shutil.copytree(tiny_models["c"], base / ".incoming-3")
        os.rename(base / ".incoming-3", base / "3")
        _wait(lambda: seen("c"), what="version 3's answers")
        n = sum(len(r) for r in results)
        _wait(lambda: sum(len(r) for r in results) >= n + 20, what="answers after the swap")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        server.stop()
    answers = [a for res in results for a in res]
    failures = [a for a in answers if a[0] != 200 or a[1] not in ("a", "b", "c")]
    assert not failures, failures[:5]
    order = {"a": 1, "b": 2, "c": 3}
    for res in results:  # each client sees versions in order: never back to an older one
        versions = [order[m] for _, m in res]
        assert versions == sorted(versions)
    assert {m for _, m in answers} == {"a", "b", "c"}
    assert server.registry.swaps == 3
    print(f"{len(answers)} requests across the swaps, 0 failed")
