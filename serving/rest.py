"""TF Serving's REST API on FastAPI.

    GET  /v1/models/{name}[/versions/{v}|/labels/{label}]            version status
    GET  /v1/models/{name}[/versions/{v}|/labels/{label}]/metadata   signature defs
    POST /v1/models/{name}[/versions/{v}|/labels/{label}]:predict    row or columnar format
    POST /v1/models/{name}[/versions/{v}|/labels/{label}]:classify   tf.Examples (classify_regress.py)
    POST /v1/models/{name}[/versions/{v}|/labels/{label}]:regress

Row format `{"signature_name": ..., "instances": [...]}` -> `{"predictions": [...]}`: an instance
is an object of named inputs (or, for a single-input signature, a bare value); a prediction is an
object of named outputs, or a bare value when the signature has one output. Columnar format
`{"inputs": {...}}` -> `{"outputs": ...}` (named the same way). `{"b64": "..."}` carries binary
string values both ways (outputs whose name ends in `_bytes`, or that are not UTF-8).

URLs are matched as TF Serving 2.16 matches them (model_servers/http_rest_api_util.cc): the
patterns below, case-insensitive, while model names, labels and the verb compare exactly. What
they do not match, or a verb other than `predict` / `classify` / `regress` in lower case, or
another method, is 400 "Malformed request: <METHOD> <path>". Every error is `{"error": "..."}`
with TF Serving's status (400 bad request, unknown label or signature; 404 unknown model or
version; 413 body over `max_body_bytes`); a 5xx means a bug of the server.
"""
import json
import logging
import re
from typing import Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from serving import classify_regress
from serving.errors import ServingError
from serving.json_codec import DEFAULT_MAX_BODY_BYTES, format_json_response, parse_json_request
from serving.model_registry import ModelRegistry

log = logging.getLogger(__name__)

# TF Serving's kPredictionApiGegex and kModelStatusApiRegex, matched against the whole path.
_PREDICTION_URL = re.compile(
    r"/v1/models/(?P<name>[^/:]+)(?:(?:/versions/(?P<version>\d+))|(?:/labels/(?P<label>[^/:]+)))?"
    r":(?P<verb>classify|regress|predict)", re.IGNORECASE)
_STATUS_URL = re.compile(
    r"/v1/models(?:/(?P<name>[^/:]+))?(?:(?:/versions/(?P<version>\d+))|"
    r"(?:/labels/(?P<label>[^/:]+)))?(?:/(?P<metadata>metadata))?", re.IGNORECASE)
_INT64_MAX = 2 ** 63 - 1


def _json(payload: dict, status: int = 200) -> Response:
    return Response(json.dumps(payload, allow_nan=True), status_code=status,
                    media_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


def _parse_version(text: Optional[str]) -> Optional[int]:
    if not text:
        return None
    if int(text) > _INT64_MAX:
        raise ServingError(400, f"Failed to convert version: {text} to numeric.")
    return int(text)


def _parse_json(body: bytes):
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise ServingError(400, f"the request body is not valid JSON: {str(e)[:200]}")


def _malformed(method: str, path: str) -> ServingError:
    return ServingError(400, f"Malformed request: {method} {path}")


def create_app(registry: ModelRegistry, batcher=None,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    app = FastAPI(title="semids model server (TF Serving REST API)", docs_url=None,
                  redoc_url=None, openapi_url=None)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return _error(400, str(exc))

    @app.exception_handler(ServingError)
    async def _serving_error(request: Request, exc: ServingError):
        return _error(exc.status, exc.message)

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception):
        log.exception("internal error on %s", request.url.path)
        return _error(500, f"internal error: {type(exc).__name__}: {exc}")

    async def _read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise ServingError(400, "invalid Content-Length")
            if int(length) > max_body_bytes:
                raise ServingError(413, f"request body of {int(length)} bytes is over the "
                                   f"limit of {max_body_bytes} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise ServingError(413, f"request body is over the limit of {max_body_bytes} "
                                   "bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _classify_or_regress(servable, method: str, body: bytes) -> dict:
        payload = _parse_json(body)
        name = payload.get("signature_name", "") if isinstance(payload, dict) else ""
        if not isinstance(name, str):
            raise ServingError(400, "'signature_name' must be a string")
        examples = classify_regress.examples_from_json(payload)
        outputs = classify_regress.run(servable.signature(name), method, examples)
        if method == classify_regress.CLASSIFY:
            return {"results": [[[label, score] for label, score in row] for row in
                                classify_regress.classifications(outputs, len(examples))]}
        return {"results": classify_regress.regressions(outputs, len(examples))}

    def _predict(servable, body: bytes) -> dict:
        if batcher is None:
            return _predict_tracked(servable, body)
        with batcher.track():
            return _predict_tracked(servable, body)

    def _predict_tracked(servable, body: bytes) -> dict:
        payload = _parse_json(body)
        sig, arrays, fmt = parse_json_request(servable.signature, payload)
        outputs = batcher.run(servable, sig, arrays) if batcher else sig.run(arrays)
        return format_json_response(outputs, fmt)

    # Every method on every path: TF Serving answers the methods and paths it does not serve
    # with 400 "Malformed request" (paths outside /v1/ aside: 404, no handler).
    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD",
                                            "OPTIONS"])
    async def models(request: Request, path: str):
        path = "/" + path
        method = request.method
        if not path.lower().startswith("/v1/"):
            raise ServingError(404, f"unknown URL {path}: the API is under /v1/models/")
        if method == "POST":
            m = _PREDICTION_URL.fullmatch(path)
            if not m or m["verb"] not in ("predict", "classify", "regress"):
                raise _malformed(method, path)
        elif method == "GET":
            m = _STATUS_URL.fullmatch(path)
            if not m:
                raise _malformed(method, path)
            if not m["name"]:
                raise ServingError(400, "Missing model name in request.")
        else:
            raise _malformed(method, path)
        version = _parse_version(m["version"])
        label = m["label"]
        registry.check_name(m["name"])
        if method == "GET":
            # TF Serving compares the subresource exactly: /METADATA is a status request.
            if m["metadata"] == "metadata":
                servable = registry.get(version, label)
                return _json({"model_spec": {"name": registry.name, "signature_name": "",
                                             "version": str(servable.version)},
                              "metadata": servable.metadata_json()})
            return _json(registry.status(version, label))
        body = await _read_body(request)
        servable = registry.get(version, label)  # held until the answer: swaps cannot drop it
        if m["verb"] != "predict":
            return _json(await run_in_threadpool(_classify_or_regress, servable, m["verb"], body))
        return _json(await run_in_threadpool(_predict, servable, body))

    return app
