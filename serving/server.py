"""The local model server: TF Serving's REST (uvicorn + FastAPI) and gRPC APIs in one process.

    semids serve --model_base_path outputs/serving/semids --model_name semids \
                 --port 8500 --rest_api_port 8501 [--model_config_file FILE] [--enable_batching]

Flags are `tensorflow_model_server`'s: `--port` is gRPC, `--rest_api_port` REST (0 turns either
off). Like TF Serving, the ports open once the versions present at start are loaded and warmed
up; new versions are then picked up in the background (`serving/model_registry.py`).
"""
import logging
import os
import signal
import threading
import time
from typing import Optional

from serving.model_registry import ModelRegistry
from serving.json_codec import DEFAULT_MAX_BODY_BYTES

log = logging.getLogger(__name__)


class ModelServer:
    """Starts and stops the registry, the batcher, the gRPC server and uvicorn (in a thread)."""

    def __init__(self, model_base_path: Optional[str], model_name: str = "semids",
                 port: int = 8500, rest_api_port: int = 8501, host: str = "0.0.0.0",
                 model_config_file: Optional[str] = None,
                 file_system_poll_wait_seconds: float = 1.0, enable_batching: bool = False,
                 max_batch_size: int = 512, batch_timeout_micros: int = 2000,
                 num_batch_threads: int = 1, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 grpc_max_workers: int = 16, warmup: bool = True):
        self.registry = ModelRegistry(model_base_path, model_name, model_config_file,
                                      poll_interval_s=file_system_poll_wait_seconds, warmup=warmup)
        self.host, self.port, self.rest_api_port = host, port, rest_api_port
        self.enable_batching = enable_batching
        self._batch_args = (max_batch_size, batch_timeout_micros / 1e6, num_batch_threads)
        self.max_body_bytes = max_body_bytes
        self.grpc_max_workers = grpc_max_workers
        self.batcher = None
        self.grpc_server = None
        self.uvicorn_server = None
        self._uvicorn_thread = None

    def start(self) -> "ModelServer":
        self.registry.start()
        if not self.registry.versions():
            log.warning("no servable version under %s yet: waiting for one (predict answers 404 "
                        "until then)", self.registry.model_base_path)
        if self.enable_batching:
            from serving.batching import Batcher
            self.batcher = Batcher(*self._batch_args)
        if self.port:
            from serving.grpc_server import create_grpc_server
            self.grpc_server = create_grpc_server(self.registry, self.port, self.host,
                                                  self.batcher, self.grpc_max_workers)
        if self.rest_api_port:
            import uvicorn

            from serving.rest import create_app
            app = create_app(self.registry, self.batcher, self.max_body_bytes)
            config = uvicorn.Config(app, host=self.host, port=self.rest_api_port,
                                    log_level="warning", access_log=False, lifespan="off",
                                    timeout_keep_alive=30)
            self.uvicorn_server = uvicorn.Server(config)
            self._uvicorn_thread = threading.Thread(target=self.uvicorn_server.run,
                                                    name="semids-rest", daemon=True)
            self._uvicorn_thread.start()
            deadline = time.time() + 30
            while not self.uvicorn_server.started:
                if not self._uvicorn_thread.is_alive() or time.time() > deadline:
                    self.stop()
                    raise OSError(f"the REST server did not start on {self.host}:"
                                  f"{self.rest_api_port} (port in use?)")
                time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self.uvicorn_server is not None:
            self.uvicorn_server.should_exit = True
            if self._uvicorn_thread is not None:
                self._uvicorn_thread.join(timeout=10)
        if self.grpc_server is not None:
            self.grpc_server.stop(grace=2).wait(5)
        if self.batcher is not None:
            self.batcher.stop()
        self.registry.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def serve(model_base_path: Optional[str], model_name: str = "semids", port: int = 8500,
          rest_api_port: int = 8501, **kwargs) -> None:
    """Runs the server until SIGINT / SIGTERM."""
    server = ModelServer(model_base_path, model_name, port, rest_api_port, **kwargs)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    versions = server.registry.versions()
    print(f"semids serve: model '{model_name}' from {server.registry.model_base_path} "
          f"(versions {versions or 'none yet'}); gRPC {server.host}:{port or 'off'}, REST "
          f"{server.host}:{rest_api_port or 'off'}"
          f"{'; batching on' if server.enable_batching else ''}", flush=True)
    if rest_api_port:
        print(f"  curl http://127.0.0.1:{rest_api_port}/v1/models/{model_name}", flush=True)
    try:
        while not stop.wait(0.5):
            if server._uvicorn_thread is not None and not server._uvicorn_thread.is_alive():
                break
    finally:
        server.stop()


def add_serve_flags(parser) -> None:
    """`semids serve` flags, named as tensorflow_model_server names them."""
    def boolean(s):
        return s.lower() in ("1", "true", "yes")
    parser.add_argument("--model_base_path", default=None,
                        help="folder of numbered SavedModel versions (default: "
                        "outputs/serving/<model_name>)")
    parser.add_argument("--model_name", default="semids")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (0: off)")
    parser.add_argument("--rest_api_port", type=int, default=8501, help="REST port (0: off)")
    parser.add_argument("--host", default="0.0.0.0", help="address to bind (default: all)")
    parser.add_argument("--model_config_file", default=None,
                        help="TF Serving ModelServerConfig text proto: version_labels, "
                        "model_version_policy (re-read when it changes)")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0)
    parser.add_argument("--enable_batching", type=boolean, nargs="?", const=True, default=False,
                        metavar="BOOL", help="batch concurrent requests (default: false)")
    parser.add_argument("--max_batch_size", type=int, default=512)
    parser.add_argument("--batch_timeout_micros", type=int, default=2000)
    parser.add_argument("--num_batch_threads", type=int, default=1)
    parser.add_argument("--max_body_bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)


def serve_from_args(args) -> int:
    base = args.model_base_path
    if base is None and not args.model_config_file:
        base = os.path.join("outputs", "serving", args.model_name)
    serve(base, args.model_name, args.port, args.rest_api_port, host=args.host,
          model_config_file=args.model_config_file,
          file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
          enable_batching=args.enable_batching, max_batch_size=args.max_batch_size,
          batch_timeout_micros=args.batch_timeout_micros,
          num_batch_threads=args.num_batch_threads, max_body_bytes=args.max_body_bytes)
    return 0
