"""TF Serving's REST API on FastAPI.

    GET  /v1/models/{name}[/versions/{v}|/labels/{label}]            version status
    GET  /v1/models/{name}[/versions/{v}|/labels/{label}]/metadata   signature defs
    POST /v1/models/{name}[/versions/{v}|/labels/{label}]:predict    row or columnar format

Row format `{"signature_name": ..., "instances": [...]}` -> `{"predictions": [...]}`: an instance
is an object of named inputs (or, for a single-input signature, a bare value); a prediction is an
object of named outputs, or a bare value when the signature has one output. Columnar format
`{"inputs": {...}}` -> `{"outputs": ...}` (named the same way). `{"b64": "..."}` carries binary
string values both ways (outputs whose name ends in `_bytes`, or that are not UTF-8). Every error
is `{"error": "..."}` with a 4xx status (400 bad request, 404 unknown model / version / label /
signature, 405 wrong method, 413 body over `max_body_bytes`); a 5xx means a bug of the server.
The ':' of ':predict' is in the path, so one catch-all route parses the URL itself.
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

from serving.errors import ServingError
from serving.json_codec import DEFAULT_MAX_BODY_BYTES, format_json_response, parse_json_request
from serving.model_registry import ModelRegistry

log = logging.getLogger(__name__)

_URL = re.compile(
    r"^(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>[A-Za-z]+))?/?$")


def _json(payload: dict, status: int = 200) -> Response:
    return Response(json.dumps(payload, allow_nan=True), status_code=status,
                    media_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


def _parse_version(text: Optional[str]) -> Optional[int]:
    if text is None:
        return None
    if not text.isdigit() or len(text) > 18:
        raise ServingError(400, f"version must be a non-negative integer, got '{text}'")
    return int(text)


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

    def _predict(servable, body: bytes) -> dict:
        if batcher is None:
            return _predict_tracked(servable, body)
        with batcher.track():
            return _predict_tracked(servable, body)

    def _predict_tracked(servable, body: bytes) -> dict:
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
            raise ServingError(400, f"the request body is not valid JSON: {str(e)[:200]}")
        sig, arrays, fmt = parse_json_request(servable.signature, payload)
        outputs = batcher.run(servable, sig, arrays) if batcher else sig.run(arrays)
        return format_json_response(outputs, fmt)

    @app.api_route("/v1/models/{rest:path}", methods=["GET", "POST"])
    async def models(request: Request, rest: str):
        m = _URL.match(rest)
        if not m:
            raise ServingError(404, f"unknown URL /v1/models/{rest}: use /v1/models/<name>"
                               "[/versions/<v>|/labels/<label>][/metadata|:predict]")
        registry.check_name(m["name"])
        version = _parse_version(m["version"])
        label = m["label"]
        verb = m["verb"]
        if verb is None:
            if request.method != "GET":
                what = "metadata" if m["metadata"] else "status"
                raise ServingError(405, f"use GET for model {what}, or POST "
                                   f".../{m['name']}:predict")
            if m["metadata"]:
                servable = registry.get(version, label)
                return _json({"model_spec": {"name": registry.name, "signature_name": "",
                                             "version": str(servable.version)},
                              "metadata": servable.metadata_json()})
            return _json(registry.status(version, label))
        if verb != "predict":
            raise ServingError(400, f"unsupported verb ':{verb}': this server implements "
                               "':predict' (the ranking signatures are predict signatures)")
        if request.method != "POST":
            raise ServingError(405, "use POST for :predict")
        body = await _read_body(request)
        servable = registry.get(version, label)  # held until the answer: swaps cannot drop it
        return _json(await run_in_threadpool(_predict, servable, body))

    return app
