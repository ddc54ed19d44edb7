"""SemidsClient and `semids predict` against the test server."""
import numpy as np
import pytest

from serving import client as client_lib
from serving.client import SemidsClient, ServingClientError
from serving.conftest import instance, reference_scores
from serving.testing import free_port


def test_score_pads_history_and_matches_in_process(served, in_process):
    with SemidsClient(served.rest_url) as client:
        assert client.history_length() == 5
        scores = client.score(42, [1, 2, 3], history=[5, 6], history_labels=[1, 0])
        want = reference_scores(in_process["b"], [instance("42", str(i), ["5", "6"], [1, 0])
                                                  for i in (1, 2, 3)])
        np.testing.assert_allclose(scores, want, atol=1e-5)
        # longer than H: refused, or truncated to the H most recent (the first H as given)
        long = [str(i) for i in range(10)]
        with pytest.raises(ValueError, match="10 items, more than the model's 5"):
            client.score("1", ["9"], long, [1] * 10)
        np.testing.assert_allclose(
            client.score("1", ["9"], long, [1] * 10, truncate_history=True),
            reference_scores(in_process["b"], [instance("1", "9", long[:5], [1] * 5)]), atol=1e-5)
        sids, embs = [[1, 2, 3], [0, 0, 1]], [[0.1, 0.2, 0.3, 0.4], [1.0, 0.0, -1.0, 0.5]]
        by_sid = client.score_by_sid("42", ["new-1", "new-2"], sids, embs, ["5"], [1])
        rows = [dict(instance("42", item, ["5"], [1]), semantic_id=s, content_embedding=e)
                for item, s, e in zip(["new-1", "new-2"], sids, embs)]
        np.testing.assert_allclose(by_sid, reference_scores(in_process["b"], rows,
                                                            "serving_by_sid"), atol=1e-5)
        with pytest.raises(ServingClientError, match="missing input\\(s\\) history"):
            client.predict([{"user_id": "1", "item_id": "2"}])
        with pytest.raises(ValueError, match="history_labels"):
            client.score("1", ["2"], history=["3"])
    with SemidsClient(served.rest_url, label="stable") as stable:
        want = reference_scores(in_process["a"], [instance("42", "1", ["5", "6"])])
        np.testing.assert_allclose(stable.score("42", ["1"], ["5", "6"], [1, 0]), want, atol=1e-5)


def test_predict_cli(served, in_process, capsys):
    rc = client_lib.main(["--user", "42", "--items", "1,2,3", "--history", "5,6",
                   "--history-labels", "1,0", "--url", served.rest_url])
    out = capsys.readouterr().out
    assert rc == 0, out
    lines = [line.split("\t") for line in out.strip().splitlines()]
    assert [item for item, _ in lines] == ["1", "2", "3"]
    want = reference_scores(in_process["b"], [instance("42", i, ["5", "6"]) for i in "123"])
    np.testing.assert_allclose([float(s) for _, s in lines], want, atol=1e-5)


def test_clear_messages_when_down_or_wrong(served, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    rc = client_lib.main(["--user", "1", "--items", "2", "--url", url])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"cannot reach the semids model server at {url}: is `semids serve` running?" in err
    assert "Traceback" not in err
    rc = client_lib.main(["--user", "1", "--items", "2", "--url", served.rest_url,
                   "--model_name", "other"])
    err = capsys.readouterr().err
    assert rc == 1 and "404" in err and "other" in err


@pytest.mark.parametrize("argv,message", [
    (["--items", ""], "--items is empty"),
    (["--items", "1,,2"], "entry 2 of '1,,2' is empty"),
    (["--items", "1", "--history", "5,,6", "--history-labels", "1,0"], "entry 2 of '5,,6' is empty"),
    (["--items", "1", "--history", "5,6", "--history-labels", "1,2"],
     "history_labels must be 0 or 1; entry 2 is 2"),
    (["--items", "1", "--history", "5", "--history-labels", "-1"], "must be 0 or 1"),
    (["--items", "1", "--history", "5", "--history-labels", "x"], "must be integers"),
    (["--items", "1", "--history", ",".join(map(str, range(1, 8))),
      "--history-labels", ",".join(["1"] * 7)], "7 items, more than the model's 5"),
])
def test_predict_cli_refuses_what_it_cannot_send(served, capsys, argv, message):
    try:
        rc = client_lib.main(["--user", "42", "--url", served.rest_url] + argv)
    except SystemExit as e:  # argparse's usage error (exit status 2)
        rc = e.code
    err = capsys.readouterr().err
    assert rc != 0 and message in err, (rc, err)
    assert "Traceback" not in err


def test_predict_cli_truncates_only_when_asked(served, in_process, capsys):
    history = [str(i) for i in range(1, 8)]
    rc = client_lib.main(["--user", "42", "--items", "3", "--url", served.rest_url,
                          "--history", ",".join(history), "--history-labels", "1,0,1,0,1,0,1",
                          "--truncate-history"])
    out = capsys.readouterr().out
    assert rc == 0
    want = reference_scores(in_process["b"], [instance("42", "3", history[:5], [1, 0, 1, 0, 1])])
    np.testing.assert_allclose([float(out.split("\t")[1])], want, atol=1e-5)


def test_new_item_text_is_refused_on_a_model_without_serving_by_sid(tmp_path, capsys,
                                                                      monkeypatch):
    from serving.server import ModelServer
    from serving.testing import write_tiny_model
    write_tiny_model(str(tmp_path / "base" / "1"), by_sid=False)
    sent = []
    monkeypatch.setattr(SemidsClient, "predict", lambda self, *a, **k: sent.append(a))
    with ModelServer(str(tmp_path / "base"), "semids", port=0, rest_api_port=free_port(),
                     host="127.0.0.1") as server:
        rc = client_lib.main(["--user", "42", "--items", "new-1", "--new-item-text", "a film",
                              "--url", f"http://127.0.0.1:{server.rest_api_port}"])
    err = capsys.readouterr().err
    assert rc == 1 and "cannot score an item by its content" in err, err
    assert sent == []  # refused before sending anything
