"""TF Serving's gRPC API: `PredictionService.Predict` / `Classify` / `Regress` /
`GetModelMetadata` and `ModelService.GetModelStatus`, from `tensorflow-serving-api`'s generated
stubs, so a client written for `tensorflow_model_server` works unchanged.

TensorProtos <-> numpy via `tf.make_ndarray` / `tf.make_tensor_proto`; Classify and Regress as in
classify_regress.py; the request checks and the model call are the REST API's
(`serving/signatures.py`). As in TF Serving, a bad request, an unknown label or signature, or a
TensorProto with a negative dimension is INVALID_ARGUMENT; an unknown model or version NOT_FOUND.
"""
import logging
from concurrent import futures
from typing import Optional

import grpc
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     get_model_status_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc, regression_pb2)

from serving import classify_regress
from serving.model_registry import ModelRegistry
from serving.errors import ServingError

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# The most elements a TensorProto may declare beyond the values it carries (TF fills the shape
# with the last value, or zeros): enough for any ranking request, far below what would exhaust
# memory (a 4 MB message could otherwise declare a shape of 2^60 elements).
MAX_FILLED_ELEMENTS = 1 << 24
_VALUE_FIELDS = ("half_val", "float_val", "double_val", "int_val", "int64_val", "bool_val",
                 "string_val", "uint32_val", "uint64_val", "scomplex_val", "dcomplex_val")


def check_tensor_proto(key: str, proto) -> None:
    """What tf.make_ndarray takes on trust, checked first as TF Serving's Tensor::FromProto does:
    no negative dimension, and no more values than the shape holds nor a huge shape to fill."""
    import numpy as np
    import tensorflow as tf
    dims = [d.size for d in proto.tensor_shape.dim]
    if proto.tensor_shape.unknown_rank or any(d < 0 for d in dims):
        raise ServingError(400, f"input '{key}' has an unknown or negative dimension {dims}")
    elements = int(np.prod(dims, dtype=object)) if dims else 1
    try:
        itemsize = tf.dtypes.as_dtype(proto.dtype).size
    except (TypeError, ValueError):
        raise ServingError(400, f"input '{key}' has an unsupported dtype {proto.dtype}")
    if proto.tensor_content:
        carried = len(proto.tensor_content) // max(itemsize, 1)
    else:
        carried = max((len(getattr(proto, f)) for f in _VALUE_FIELDS), default=0)
    if carried > elements or (carried < elements and elements > MAX_FILLED_ELEMENTS):
        raise ServingError(400, f"input '{key}' declares shape {dims} ({elements} elements) but "
                           f"carries {carried} value(s)")


def _resolve(registry: ModelRegistry, model_spec):
    registry.check_name(model_spec.name)
    version = model_spec.version.value if model_spec.HasField("version") else None
    label = model_spec.version_label if model_spec.WhichOneof("version_choice") == \
        "version_label" else None
    return registry.get(version, label)


def _abort(context, e: ServingError):
    context.abort(getattr(grpc.StatusCode, e.grpc_code), e.message)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, registry: ModelRegistry, batcher=None):
        self.registry = registry
        self.batcher = batcher

    def Predict(self, request, context):
        if self.batcher is None:
            return self._predict(request, context)
        with self.batcher.track():
            return self._predict(request, context)

    def _predict(self, request, context):
        import tensorflow as tf
        try:
            servable = _resolve(self.registry, request.model_spec)
            sig = servable.signature(request.model_spec.signature_name)
            arrays = {}
            for key, proto in request.inputs.items():
                check_tensor_proto(key, proto)
                try:
                    arrays[key] = tf.make_ndarray(proto)
                except Exception as e:  # noqa: BLE001 - a malformed TensorProto
                    raise ServingError(400, f"input '{key}' is not a valid TensorProto: {e}")
            arrays = sig.validate(arrays)
            outputs = self.batcher.run(servable, sig, arrays) if self.batcher else sig.run(arrays)
        except ServingError as e:
            _abort(context, e)
        wanted = list(request.output_filter) or list(outputs)
        unknown = [k for k in wanted if k not in outputs]
        if unknown:
            _abort(context, ServingError(400, f"output_filter names unknown output(s) {unknown}"
                                         f" (outputs: {sorted(outputs)})"))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.registry.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = sig.name
        for key in wanted:
            response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key]))
        return response

    def _classify_or_regress(self, request, context, method: str):
        try:
            servable = _resolve(self.registry, request.model_spec)
            sig = servable.signature(request.model_spec.signature_name)
            examples = classify_regress.examples_from_input_proto(request.input)
            outputs = classify_regress.run(sig, method, examples)
        except ServingError as e:
            _abort(context, e)
        if method == classify_regress.CLASSIFY:
            response = classification_pb2.ClassificationResponse()
            for row in classify_regress.classifications(outputs, len(examples)):
                classes = response.result.classifications.add()
                for label, score in row:
                    classes.classes.add(label=label, score=score)
        else:
            response = regression_pb2.RegressionResponse()
            for value in classify_regress.regressions(outputs, len(examples)):
                response.result.regressions.add(value=value)
        response.model_spec.name = self.registry.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = sig.name
        return response

    def Classify(self, request, context):
        return self._classify_or_regress(request, context, classify_regress.CLASSIFY)

    def Regress(self, request, context):
        return self._classify_or_regress(request, context, classify_regress.REGRESS)

    def GetModelMetadata(self, request, context):
        try:
            servable = _resolve(self.registry, request.model_spec)
            fields = list(request.metadata_field)
            if fields != ["signature_def"]:
                raise ServingError(400, "metadata_field must be [\"signature_def\"] (the one "
                                   f"field TF Serving supports), got {fields}")
        except ServingError as e:
            _abort(context, e)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.registry.name
        response.model_spec.version.value = servable.version
        response.metadata["signature_def"].Pack(servable.signature_def_map)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, registry: ModelRegistry):
        self.registry = registry

    def GetModelStatus(self, request, context):
        from tensorflow.core.protobuf import error_codes_pb2
        spec = request.model_spec
        try:
            self.registry.check_name(spec.name)
            entries = self.registry.status_entries(
                spec.version.value if spec.HasField("version") else None,
                spec.version_label if spec.WhichOneof("version_choice") == "version_label"
                else None)
        except ServingError as e:
            _abort(context, e)
        response = get_model_status_pb2.GetModelStatusResponse()
        for version, state, code, message in entries:
            status = response.model_version_status.add()
            status.version = version
            status.state = get_model_status_pb2.ModelVersionStatus.State.Value(state)
            status.status.error_code = error_codes_pb2.Code.Value(code)
            status.status.error_message = message
        return response


def create_grpc_server(registry: ModelRegistry, port: int, host: str = "0.0.0.0", batcher=None,
                       max_workers: int = 16) -> Optional[grpc.Server]:
    """A started gRPC server on host:port (port 0 picks a free one: see `.bound_port`)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers,
                                                    thread_name_prefix="semids-grpc"),
                         options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                                  ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                                  ("grpc.so_reuseport", 0)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(registry, batcher), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(registry), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot bind the gRPC port {host}:{port}")
    server.bound_port = bound
    server.start()
    return server
