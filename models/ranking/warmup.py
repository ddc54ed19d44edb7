"""TF Serving's warm-up convention for the exported ranking model.

`write_warmup_requests(saved_model_dir)` writes `<saved_model_dir>/assets.extra/
tf_serving_warmup_requests`: a TFRecord file of `tensorflow_serving.apis.prediction_log_pb2.
PredictionLog`s holding `predict_log` requests for `serving_default` (and one for
`serving_by_sid` when the model has it), plus a `regress_log` and a `classify_log` request of the
same rows as tf.Examples when the model has those signatures. They are built from the
SignatureDefs in `saved_model.pb` (shapes and dtypes read there, never hard-coded): dummy user /
item ids, a half-filled history padded with "" to the model's history length, batch sizes cycling
through `batch_sizes`. `tensorflow_model_server` and `semids serve` replay them before they report
the version AVAILABLE. Call it right after `model.save(serving_model_dir, ...)` in the Trainer;
the Pusher copies the folder whole.
"""
import os
from typing import Sequence

from schemas import artifact_layout, features

WARMUP_DIR = artifact_layout.ServingModel.WARMUP_DIR
WARMUP_FILE = artifact_layout.ServingModel.WARMUP_FILE


def _dummy_value(name: str, dtype: int, inner_shape: Sequence[int], row: int):
    """One instance's value of an input (shape without the batch dimension)."""
    import numpy as np
    from tensorflow.core.framework import types_pb2

    if dtype == types_pb2.DT_STRING:
        if name == features.USER_ID:
            base = np.array(f"warmup-user-{row}".encode())
        elif name == features.ITEM_ID:
            base = np.array(f"warmup-item-{row}".encode())
        else:
            base = None
        if base is not None and not inner_shape:
            return base
        value = np.full(inner_shape, features.HISTORY_PAD.encode(), dtype=object)
        flat = value.reshape(-1)
        flat[: (flat.size + 1) // 2] = [f"warmup-item-{row + k + 1}".encode()
                                        for k in range((flat.size + 1) // 2)]
        return value
    import tensorflow as tf
    np_dtype = tf.dtypes.as_dtype(dtype).as_numpy_dtype
    value = np.zeros(inner_shape, dtype=np_dtype)
    if name == features.HISTORY_LABELS and value.size:
        flat = value.reshape(-1)
        flat[: (flat.size + 1) // 2] = [(row + k) % 2 for k in range((flat.size + 1) // 2)]
    return value


def _request(signature_name: str, signature_def, batch_size: int, model_name: str):
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, info in signature_def.inputs.items():
        dims = [d.size for d in info.tensor_shape.dim]
        if info.tensor_shape.unknown_rank or not dims or any(d < 0 for d in dims[1:]):
            raise ValueError(f"{signature_name}: input {name} has no fixed inner shape {dims}")
        rows = [_dummy_value(name, info.dtype, dims[1:], r) for r in range(batch_size)]
        value = np.stack(rows)
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=info.dtype))
    return request


def write_warmup_requests(saved_model_dir: str, num_requests: int = 3,
                          batch_sizes: Sequence[int] = (1, 10, 100),
                          model_name: str = "semids") -> str:
    """Writes `<saved_model_dir>/assets.extra/tf_serving_warmup_requests`; returns its path."""
    import tensorflow as tf
    from tensorflow.python.saved_model import loader_impl
    from tensorflow_serving.apis import prediction_log_pb2

    sig_defs = loader_impl.parse_saved_model(saved_model_dir).meta_graphs[0].signature_def
    if features.SERVING_DEFAULT_SIGNATURE not in sig_defs:
        raise ValueError(f"{saved_model_dir} has no {features.SERVING_DEFAULT_SIGNATURE} signature")
    requests = [_request(features.SERVING_DEFAULT_SIGNATURE,
                         sig_defs[features.SERVING_DEFAULT_SIGNATURE],
                         batch_sizes[i % len(batch_sizes)], model_name)
                for i in range(num_requests)]
    if features.SERVING_BY_SID_SIGNATURE in sig_defs:
        requests.append(_request(features.SERVING_BY_SID_SIGNATURE,
                                 sig_defs[features.SERVING_BY_SID_SIGNATURE], 1, model_name))
    logs = [prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(
        request=request)) for request in requests]
    # Classify / Regress: the tf.Examples of serving_default's first dummy request.
    examples = _examples(requests[0])
    if features.REGRESS_SIGNATURE in sig_defs:
        logs.append(prediction_log_pb2.PredictionLog(regress_log=prediction_log_pb2.RegressLog(
            request=_examples_request("regress", features.REGRESS_SIGNATURE, examples,
                                      model_name))))
    if features.CLASSIFY_SIGNATURE in sig_defs:
        logs.append(prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog(
            request=_examples_request("classify", features.CLASSIFY_SIGNATURE, examples,
                                      model_name))))
    out_dir = os.path.join(saved_model_dir, WARMUP_DIR)
    tf.io.gfile.makedirs(out_dir)
    path = os.path.join(out_dir, WARMUP_FILE)
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def _examples(predict_request):
    """The rows of a serving_default PredictRequest as tf.Examples (padding left out)."""
    import tensorflow as tf
    arrays = {k: tf.make_ndarray(v) for k, v in predict_request.inputs.items()}
    history, labels = arrays[features.HISTORY], arrays[features.HISTORY_LABELS]
    out = []
    for i in range(len(arrays[features.USER_ID])):
        present = [j for j, h in enumerate(history[i]) if h != features.HISTORY_PAD.encode()]

        def strings(values):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))
        out.append(tf.train.Example(features=tf.train.Features(feature={
            features.USER_ID: strings([arrays[features.USER_ID][i]]),
            features.ITEM_ID: strings([arrays[features.ITEM_ID][i]]),
            features.HISTORY: strings(history[i][present]),
            features.HISTORY_LABELS: tf.train.Feature(int64_list=tf.train.Int64List(
                value=[int(x) for x in labels[i][present]]))})))
    return out


def _examples_request(kind: str, signature_name: str, examples, model_name: str):
    from tensorflow_serving.apis import classification_pb2, regression_pb2
    request = (classification_pb2.ClassificationRequest() if kind == "classify"
               else regression_pb2.RegressionRequest())
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    request.input.example_list.examples.extend(examples)
    return request
