"""Score candidates for a user against a running model server (REST), from Python or the shell.

    from serving.client import SemidsClient
    client = SemidsClient("http://127.0.0.1:8501", model_name="semids")
    client.score("42", ["1", "2", "3"], history=["5", "6"], history_labels=[1, 0])  # [0.61, ...]

    semids predict --user 42 --items 1,2,3 --history 5,6 --history-labels 1,0
    1	0.612345
    ...

`history` is most recent first; the client pads it with "" (labels with 0) to the model's history
length H, which it reads from the server's metadata. A longer history is refused unless
`truncate_history` (`--truncate-history`) keeps its H most recent items; labels must be 0 or 1.
A server that is down or an error the server returns (its JSON `error`) is a
`ServingClientError` with a readable message; a bad argument is a ValueError naming it.
"""
import argparse
import sys
from typing import Dict, List, Optional, Sequence

import httpx

from schemas import features

DEFAULT_URL = "http://127.0.0.1:8501"


class ServingClientError(RuntimeError):
    pass


class SemidsClient:
    def __init__(self, url: str = DEFAULT_URL, model_name: str = "semids",
                 version: Optional[int] = None, label: Optional[str] = None,
                 timeout_s: float = 30.0):
        self.url = url.rstrip("/")
        self.model_name = model_name
        path = f"/v1/models/{model_name}"
        if version is not None:
            path += f"/versions/{int(version)}"
        elif label is not None:
            path += f"/labels/{label}"
        self._model_path = path
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s)
        self._metadata = None

    def close(self):
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- HTTP ---------------------------------------------------------------------------------
    def _request(self, method: str, path: str, json_body=None) -> dict:
        try:
            response = self._http.request(method, path, json=json_body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as e:
            raise ServingClientError(
                f"cannot reach the semids model server at {self.url}: is `semids serve` "
                f"running? ({e})") from None
        except httpx.HTTPError as e:
            raise ServingClientError(f"request to {self.url}{path} failed: {e}") from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code != 200:
            detail = payload.get("error") if isinstance(payload, dict) else None
            raise ServingClientError(
                f"model server {self.url} answered {response.status_code} for {method} {path}: "
                f"{detail or response.text[:500]}")
        if not isinstance(payload, dict):
            raise ServingClientError(f"model server {self.url} answered {path} with non-JSON")
        return payload

    def status(self) -> dict:
        return self._request("GET", self._model_path)

    def metadata(self) -> dict:
        if self._metadata is None:
            self._metadata = self._request("GET", self._model_path + "/metadata")
        return self._metadata

    def signature_inputs(self, signature: str = features.SERVING_DEFAULT_SIGNATURE
                         ) -> Dict[str, list]:
        """{input name: shape (-1 for unknown)} of a signature, from the metadata."""
        defs = self.metadata()["metadata"]["signature_def"]["signature_def"]
        if signature not in defs:
            raise ServingClientError(f"the served model has no signature '{signature}' "
                                     f"(it has {', '.join(sorted(defs))})")
        return {name: [int(d["size"]) for d in spec["tensor_shape"].get("dim", [])]
                for name, spec in defs[signature]["inputs"].items()}

    def history_length(self) -> int:
        return self.signature_inputs()[features.HISTORY][1]

    def predict(self, instances: List[dict], signature_name: Optional[str] = None) -> list:
        body = {"instances": instances}
        if signature_name:
            body["signature_name"] = signature_name
        return self._request("POST", self._model_path + ":predict", body)["predictions"]

    def _examples_call(self, verb: str, examples: List[dict], signature_name: str,
                       context: Optional[dict]) -> list:
        body = {"signature_name": signature_name, "examples": examples}
        if context:
            body["context"] = context
        return self._request("POST", f"{self._model_path}:{verb}", body)["results"]

    def regress(self, examples: List[dict], signature_name: str = features.REGRESS_SIGNATURE,
                context: Optional[dict] = None) -> List[float]:
        """TF Serving's :regress: one value per tf.Example (a JSON object of features, the
        `context` features added to each)."""
        return [float(v) for v in self._examples_call("regress", examples, signature_name,
                                                      context)]

    def classify(self, examples: List[dict], signature_name: str = features.CLASSIFY_SIGNATURE,
                 context: Optional[dict] = None) -> List[List[tuple]]:
        """TF Serving's :classify: [(class label, score), ...] per tf.Example."""
        return [[(str(label), float(score)) for label, score in row]
                for row in self._examples_call("classify", examples, signature_name, context)]

    # --- scoring ------------------------------------------------------------------------------
    def _base_instance(self, user_id, history, history_labels, length: int,
                       truncate_history: bool = False) -> dict:
        history = [str(h) for h in (history or [])]
        labels = [int(x) for x in history_labels] if history_labels is not None else None
        if labels is None:
            if history:
                raise ValueError("history_labels: give one label (0 or 1) per history item")
            labels = []
        if len(labels) != len(history):
            raise ValueError(f"history has {len(history)} items but history_labels has "
                             f"{len(labels)}: give one label per history item")
        bad = [(i, x) for i, x in enumerate(labels) if x not in (0, 1)]
        if bad:
            raise ValueError(f"history_labels must be 0 or 1; entry {bad[0][0] + 1} is "
                             f"{bad[0][1]}")
        if "" in history:
            raise ValueError(f"history: entry {history.index('') + 1} is an empty item id")
        if len(history) > length and not truncate_history:
            raise ValueError(f"history has {len(history)} items, more than the model's "
                             f"{length}: pass truncate_history (--truncate-history) to keep the "
                             f"{length} most recent")
        history, labels = history[:length], labels[:length]
        pad = length - len(history)
        return {features.USER_ID: str(user_id),
                features.HISTORY: history + [features.HISTORY_PAD] * pad,
                features.HISTORY_LABELS: labels + [0] * pad}

    def score(self, user_id, item_ids: Sequence, history: Sequence = (),
              history_labels: Optional[Sequence[int]] = None,
              truncate_history: bool = False) -> List[float]:
        """P(positive) for each candidate item, in order (serving_default)."""
        if not item_ids:
            return []
        _check_item_ids(item_ids)
        base = self._base_instance(user_id, history, history_labels, self.history_length(),
                                   truncate_history)
        instances = [dict(base, **{features.ITEM_ID: str(item)}) for item in item_ids]
        return [float(p) for p in self.predict(instances)]

    def score_by_sid(self, user_id, item_ids: Sequence, semantic_ids: Sequence[Sequence[int]],
                     content_embeddings: Sequence[Sequence[float]], history: Sequence = (),
                     history_labels: Optional[Sequence[int]] = None,
                     truncate_history: bool = False) -> List[float]:
        """For items added after export: their SID codes and content embeddings given
        (serving_by_sid)."""
        if not (len(item_ids) == len(semantic_ids) == len(content_embeddings)):
            raise ValueError("item_ids, semantic_ids and content_embeddings need one entry per "
                             "item")
        if not item_ids:
            return []
        _check_item_ids(item_ids)
        base = self._base_instance(user_id, history, history_labels, self.history_length(),
                                   truncate_history)
        instances = [dict(base, **{features.ITEM_ID: str(item),
                                   features.SEMANTIC_ID: [int(c) for c in sid],
                                   features.CONTENT_EMBEDDING: [float(x) for x in emb]})
                     for item, sid, emb in zip(item_ids, semantic_ids, content_embeddings)]
        return [float(p) for p in self.predict(instances, features.SERVING_BY_SID_SIGNATURE)]


    def has_signature(self, signature: str) -> bool:
        return signature in self.metadata()["metadata"]["signature_def"]["signature_def"]


def _check_item_ids(item_ids: Sequence) -> None:
    empty = [i for i, item in enumerate(item_ids) if not str(item)]
    if empty:
        raise ValueError(f"item ids: entry {empty[0] + 1} is empty")


# --- `semids predict` -----------------------------------------------------------------------------
def _csv(s: str) -> List[str]:
    """A comma-separated list; "" is the empty list, and an empty entry (1,,2) is refused."""
    if not s.strip():
        return []
    values = [x.strip() for x in s.split(",")]
    empty = [i for i, x in enumerate(values) if not x]
    if empty:
        raise argparse.ArgumentTypeError(f"entry {empty[0] + 1} of '{s}' is empty")
    return values


def add_predict_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", required=True, help="user id")
    parser.add_argument("--items", required=True, type=_csv, help="candidate item ids: 1,2,3")
    parser.add_argument("--history", type=_csv, default=[],
                        help="the user's past items, most recent first: 5,6")
    parser.add_argument("--history-labels", "--history_labels", dest="history_labels",
                        default=None, help="their labels (0/1), aligned with --history: 1,0")
    parser.add_argument("--truncate-history", "--truncate_history", dest="truncate_history",
                        action="store_true",
                        help="keep the model's H most recent history items when more are given "
                        "(without it, a longer history is refused)")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"REST address (default {DEFAULT_URL})")
    parser.add_argument("--model_name", default="semids")
    parser.add_argument("--version", type=int, default=None)
    parser.add_argument("--label", default=None, help="a version label of the server's config")
    parser.add_argument("--new-item-text", "--new_item_text", dest="new_item_texts",
                        action="append", default=None, metavar="TEXT",
                        help="items added after export: one text per --items entry (repeat the "
                        "flag); their SIDs come from the content encoder and the RQ-VAE, and they "
                        "are scored through serving_by_sid")
    parser.add_argument("--encoder_dir", default=None,
                        help="content encoder folder (default: the latest `make run`'s)")
    parser.add_argument("--rqvae_model_dir", default=None,
                        help="RQ-VAE SavedModel (default: the latest `make run`'s)")


def predict_from_args(args, out=None) -> int:
    out = out or sys.stdout
    labels = None
    if args.history_labels is not None:
        try:
            labels = [int(x) for x in _csv(args.history_labels)]
        except (ValueError, argparse.ArgumentTypeError):
            raise ValueError(f"--history-labels must be integers like 1,0, got "
                             f"'{args.history_labels}'") from None
    if not args.items:
        raise ValueError("--items is empty: give at least one candidate item id, e.g. 1,2,3")
    truncate = bool(getattr(args, "truncate_history", False))
    texts = getattr(args, "new_item_texts", None)
    if texts and len(texts) != len(args.items):
        raise ValueError(f"give one --new-item-text per item: {len(args.items)} item(s), "
                         f"{len(texts)} text(s)")
    with SemidsClient(args.url, args.model_name, version=args.version, label=args.label) as c:
        if texts and not c.has_signature(features.SERVING_BY_SID_SIGNATURE):
            raise ValueError(
                "--new-item-text: the served model cannot score an item by its content (it has "
                f"no {features.SERVING_BY_SID_SIGNATURE} signature: its item representation, "
                "e.g. random_hash, reads neither SIDs nor content embeddings); serve a model of "
                "a SID or dense_content representation")
        if texts:
            from serving.new_items import NewItemEncoder
            encoder_dir, rqvae_dir = args.encoder_dir, args.rqvae_model_dir
            if not (encoder_dir and rqvae_dir):
                raise ValueError("--new-item-text needs --encoder_dir and --rqvae_model_dir "
                                 "(`semids predict` fills them from the latest `make run`)")
            sid_length = c.signature_inputs(features.SERVING_BY_SID_SIGNATURE)[features.SEMANTIC_ID][1]
            sids, embeddings = NewItemEncoder(encoder_dir, rqvae_dir, sid_length).encode(texts)
            scores = c.score_by_sid(args.user, args.items, sids, embeddings.tolist(),
                                    args.history, labels, truncate)
        else:
            scores = c.score(args.user, args.items, args.history, labels, truncate)
    for item, s in zip(args.items, scores):
        print(f"{item}\t{s:.6f}", file=out)
    return 0


def run_predict(args, out=None) -> int:
    """`semids predict`: item<TAB>score lines; an error is one line on stderr and exit status 1
    (no traceback)."""
    try:
        return predict_from_args(args, out)
    except (ValueError, RuntimeError, OSError) as e:
        print(f"semids predict: error: {e}", file=sys.stderr)
        return 1


def main(argv=None) -> int:
    """`python -m serving.client --user ... --items ...`: `semids predict` without the pipeline's
    defaults (give --encoder_dir and --rqvae_model_dir with --new-item-text)."""
    parser = argparse.ArgumentParser(prog="semids predict")
    add_predict_flags(parser)
    return run_predict(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
