"""run_pipeline: prepares the inputs, runs the pipeline with LocalDagRunner and writes the
report; the console gets one line per component, the full log goes to a file."""
import logging
import os
import time

from pipeline.config import RunConfig


def fmt_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ProgressHandler(logging.Handler):
    """Prints one line per component as LocalDagRunner starts and finishes it."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.started = {}

    def emit(self, record):
        msg = record.getMessage()
        if msg.startswith("Component ") and msg.endswith(" is running."):
            name = msg[len("Component "):-len(" is running.")]
            self.started[name] = time.time()
        elif msg.startswith("Component ") and msg.endswith(" is finished."):
            name = msg[len("Component "):-len(" is finished.")]
            took = time.time() - self.started.get(name, time.time())
            print(f"  [{time.strftime('%H:%M:%S')}] {name:<32} done in {took:6.1f}s", flush=True)


def setup_logging(config: RunConfig) -> str:
    """Full logs to a file; the console gets one line per finished component."""
    from absl import logging as absl_logging
    log_dir = os.path.join(config.output_dir, "logs")
    os.makedirs(log_dir, exist_ok=True)
    log_path = os.path.join(log_dir, f"{config.pipeline_name}-{time.strftime('%Y%m%d-%H%M%S')}.log")
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    absl_logging.use_python_logging(quiet=True)
    absl_logging.set_verbosity(absl_logging.INFO)
    fh = logging.FileHandler(log_path)
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(fh)
    root.addHandler(ProgressHandler())
    root.setLevel(logging.INFO)
    return log_path


def run_pipeline(config: RunConfig, quiet: bool = False) -> dict:
    """Prepares the data, runs the pipeline with LocalDagRunner, writes and returns metrics."""
    from tfx import v1 as tfx

    from pipeline import pipeline as pipeline_lib
    from pipeline import report
    from pipeline.inputs import prepare_inputs

    start = time.time()
    inputs = prepare_inputs(config)
    log_path = None if quiet else setup_logging(config)
    if log_path:
        print(f"semids: running pipeline '{config.pipeline_name}' on {config.dataset_name} "
              f"({config.representation}); data {inputs.data_dir}; full log {log_path}", flush=True)
    tfx.orchestration.LocalDagRunner().run(pipeline_lib.create_pipeline(config, inputs))
    metrics = report.collect_metrics(config, time.time() - start)
    path = report.write_metrics(config, metrics)
    sid_report = report.copy_sid_report(config)
    if not quiet:
        if sid_report:
            print(f"\nSemantic IDs ({sid_report['path']}):\n{report.format_sid_summary(sid_report)}")
        print(f"\nResults ({path}):\n{report.format_table([metrics])}")
        for table, n in sorted(metrics["rows_rejected"].items()):
            print(f"Rows rejected from {table}: {n}" +
                  (f" (listed in {metrics['rejects_files'][table]})" if n else ""))
        print(f"\nPushed SavedModel: {metrics['pushed_model_dir'] or '(not pushed: model not blessed)'}")
    return metrics
