"""`semids`: the project's command line.

    semids run [--dataset ml100k|ml1m|synthetic|csv] [--data_dir DIR] [--representation NAME]
               [--item_table_size B] [--runner direct|...] [--beam_arg=--flag=value ...]
               [--config FILE] [--FIELD VALUE for any RunConfig field] [--verbose]
    semids prepare-data [same options]   # only write items.csv / interactions.csv
    semids show-config [same options]    # print the RunConfig as JSON (a SEMIDS_CONFIG file)
    semids experiment [--representations A,B] [--budgets B,B] [--histories with,without]
                      [--seeds 0,1,2] [--out_dir DIR] [--summarize_only] [same options: the base
                      config]   # every representation x budget x history x seed (pipeline/experiment/)
    semids serve --model_base_path outputs/serving/semids --model_name semids --port 8500
                 --rest_api_port 8501 [--model_config_file F] [--enable_batching]
                                         # TF Serving's REST + gRPC APIs (serving/server.py)
    semids predict --user 42 --items 1,2,3 --history 5,6 --history-labels 1,0 [--url URL]
                                         # score candidates against a running server (REST)
    semids compile-vertex --output F.json --project P --region R --pipeline_root gs://...
                          --data_dir gs://... --encoder_dir gs://... --image IMAGE [same options]
                                         # the Vertex AI Pipelines job JSON, offline (pipeline/vertex.py)
"""
import argparse
import dataclasses
import logging
import os
import sys
import time
import traceback
import typing

from pipeline.config import RunConfig
from pipeline.interrupts import stops_like_ctrl_c
from pipeline.run import fmt_duration, log_file_path, run_pipeline, stderr_to_log


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="JSON file with RunConfig fields (flags override it)")
    hints = typing.get_type_hints(RunConfig)
    for field in dataclasses.fields(RunConfig):
        hint = hints[field.name]
        if typing.get_origin(hint) is typing.Union:  # Optional[X]: None means "the default"
            hint = typing.get_args(hint)[0]
        flag = f"--{field.name}"
        if field.name == "beam_args":
            parser.add_argument("--beam_arg", dest="beam_args", action="append", default=None,
                                metavar="ARG", help="a Beam pipeline argument, repeatable "
                                "(e.g. --beam_arg=--direct_num_workers=2)")
        elif hint is bool:
            # `--refresh_sids` alone means true; `--flag false` still sets false.
            parser.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=None,
                                nargs="?", const=True, metavar="BOOL")
        elif field.name in ("hidden_units", "rqvae_hidden_units", "table_budgets"):
            parser.add_argument(flag, type=lambda s: tuple(int(x) for x in s.split(",") if x),
                                default=None, metavar="N,N")
        elif field.name == "item_text_fields":
            parser.add_argument(flag, type=lambda s: [x for x in s.split(",") if x], default=None,
                                metavar="COL,COL")
        else:
            parser.add_argument(flag, type=hint, default=None)


def _add_experiment_flags(parser: argparse.ArgumentParser) -> None:
    from schemas import features

    def names(s):
        return [x for x in s.split(",") if x]

    parser.add_argument("--representations", type=names, default=list(features.REPRESENTATIONS),
                        metavar="NAME,NAME", help="default: all six")
    parser.add_argument("--budgets", type=lambda s: [int(x) for x in names(s)], default=None,
                        metavar="B,B", help="table budgets to sweep (default: the base config's "
                        "table_budgets; each must be in table_budgets or item_table_size)")
    parser.add_argument("--histories", type=names, default=None,
                        metavar="with,without", help="user history settings (default: both; "
                        "ml1m: with, the setting its study is about)")
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in names(s)], default=[0, 1, 2],
                        metavar="S,S", help="ranking model seeds (default: 0,1,2)")
    parser.add_argument("--out_dir", default=None,
                        help="where results.csv, table.md and the plots go "
                        "(default: <results_dir>/experiment/<dataset>)")
    parser.add_argument("--summarize_only", action="store_true",
                        help="only rewrite table.md / summary.json / plots from results.csv")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="training processes of one TF thread each (default: 2 on a machine "
                        "with 2 or more cores, as one process keeps about 1.2 cores busy; 1 for "
                        "ml1m, whose models need ~11 GB each and use both cores)")
    parser.add_argument("--check_evaluator", type=lambda s: s.lower() in ("1", "true", "yes"),
                        default=True, metavar="BOOL", help="compare the in-process metrics with "
                        "the Evaluator's on the base run first (default: true)")


def run_experiment_command(args: argparse.Namespace, config: RunConfig) -> None:
    from pipeline import experiment
    start = time.time()
    out_dir = args.out_dir or os.path.join(config.results_dir, "experiment", config.dataset_name)
    if args.summarize_only:
        experiment.summarize(out_dir)
    else:
        experiment.run_experiment(
            config, representations=args.representations, budgets=args.budgets,
            histories=args.histories, seeds=args.seeds, out_dir=out_dir,
            check_evaluator=args.check_evaluator,
            workers=(args.workers if args.workers is not None
                     else experiment.default_workers(config.dataset_name)))
    with open(os.path.join(out_dir, experiment.TABLE_FILE)) as f:
        print("\n" + f.read())
    print(f"semids experiment: total time {fmt_duration(time.time() - start)} "
          f"({time.time() - start:.0f}s); results in {out_dir}", flush=True)


# Commands that print their own progress lines on stdout; the stderr of TensorFlow,
# SentencePiece and their worker processes goes to a log file (`stderr_to_log`).
QUIET_COMMANDS = ("experiment", "simulate", "tune")


def _run_quiet_command(args: argparse.Namespace, config: RunConfig) -> None:
    if args.verbose:
        return _dispatch_quiet_command(args, config)
    log_path = log_file_path(config, f"{args.command}-{config.dataset_name}")
    print(f"semids {args.command}: TensorFlow's and the workers' messages go to {log_path}",
          flush=True)
    with stderr_to_log(log_path):
        try:
            _dispatch_quiet_command(args, config)
        except Exception:
            with open(log_path, "a") as log:  # beside TF's messages; main prints the error
                traceback.print_exc(file=log)
            raise


def _dispatch_quiet_command(args: argparse.Namespace, config: RunConfig) -> None:
    if args.command == "experiment":
        run_experiment_command(args, config)
    elif args.command == "simulate":
        from pipeline import simulate
        simulate.simulate_command(args, config)
    else:
        from pipeline.experiment import tuning
        from schemas import features
        tuning.run_tuning(config, representations=args.representations or features.REPRESENTATIONS,
                          trials=args.trials or tuning.DEFAULT_TRIALS)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    base = RunConfig.from_file(args.config).to_dict() if args.config else {}
    for field in dataclasses.fields(RunConfig):
        value = getattr(args, field.name, None)
        if value is not None:
            base[field.name] = value
    return RunConfig.from_dict(base)


def _serving_command(args: argparse.Namespace) -> int:
    """`semids serve` / `semids predict`: errors as one line, no traceback."""
    try:
        if args.command == "serve":
            from serving.server import serve_from_args
            return serve_from_args(args)
        from serving.client import run_predict
        if getattr(args, "new_item_texts", None) and not (args.encoder_dir and args.rqvae_model_dir):
            from pipeline import report
            encoder_dir, rqvae_dir = report.new_item_model_paths(RunConfig())
            args.encoder_dir = args.encoder_dir or encoder_dir
            args.rqvae_model_dir = args.rqvae_model_dir or rqvae_dir
        return run_predict(args)
    except (ValueError, RuntimeError, OSError) as e:
        print(f"semids {args.command}: error: {e}", file=sys.stderr)
        return 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="semids", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("run", "run the pipeline and report"),
                        ("prepare-data", "write items.csv and interactions.csv only"),
                        ("show-config", "print the RunConfig as JSON")):
        _add_config_flags(sub.add_parser(name, help=help_))
    experiment_parser = sub.add_parser(
        "experiment", help="representations x table budgets x history x seeds (resumable)")
    _add_config_flags(experiment_parser)
    _add_experiment_flags(experiment_parser)
    tune_parser = sub.add_parser(
        "tune", help="choose the ranking settings per representation on the validation split "
        "(writes models/ranking/tuned_hparams.json; resumable; processes may run side by side)")
    _add_config_flags(tune_parser)
    tune_parser.add_argument("--representations", type=lambda s: [x for x in s.split(",") if x],
                             default=None, metavar="NAME,NAME", help="default: all six")
    tune_parser.add_argument("--trials", type=int, default=None,
                             help="trials per representation (default: 8)")
    simulate_parser = sub.add_parser(
        "simulate", help="continuous training span by span on a growing catalog: reuse_warm vs "
        "scratch (resumable; docs/continuous.md)")
    _add_config_flags(simulate_parser)
    simulate_parser.add_argument("--spans", type=int, default=6, metavar="K",
                                 help="number of spans (default: 6)")
    simulate_parser.add_argument(
        "--representations", type=lambda s: [x for x in s.split(",") if x], default=None,
        metavar="NAME,NAME", help="default: random_hash and the SID representation the "
        "dataset's study chose on validation")
    simulate_parser.add_argument("--out_dir", default=None, help="where results.csv, the PNG "
                                 "and README.md go (default: docs/results/continuous)")
    simulate_parser.add_argument("--work_dir", default=None, help="spans, MLMD and artifacts "
                                 "(default: <output_dir>/simulate/<dataset>-<K>)")
    simulate_parser.add_argument("--seed_spread_span", type=int, default=None, metavar="S",
                                 help="also measure σ: the ranking model's AUC over seeds 0-2 "
                                 "on span S's scratch run (default: the middle span)")
    simulate_parser.add_argument("--jobs", type=int, default=None, metavar="N",
                                 help="processes, each running one representation's pipelines "
                                 "(default: one per representation, at most one per two cores)")
    simulate_parser.add_argument("--summarize_only", action="store_true",
                                 help="only rewrite the PNG and README.md from results.csv")
    from serving.client import add_predict_flags
    from serving.server import add_serve_flags
    add_serve_flags(sub.add_parser("serve", help="serve the pushed model (TF Serving's REST and "
                                   "gRPC APIs)"))
    add_predict_flags(sub.add_parser("predict", help="score items for a user via a running "
                                     "`semids serve`"))
    from pipeline.vertex import add_vertex_flags
    vertex_parser = sub.add_parser(
        "compile-vertex", help="compile the pipeline into a Vertex AI Pipelines job JSON (offline)")
    _add_config_flags(vertex_parser)
    add_vertex_flags(vertex_parser)
    for name in ("run",) + QUIET_COMMANDS:
        sub.choices[name].add_argument(
            "--verbose", action="store_true",
            help="show all output on the console (TF, Keras, absl, Beam, pip...); by default it "
            "goes to a log under <output_dir>/logs/ only")
    args = parser.parse_args(argv)
    if args.command in ("serve", "predict"):
        return _serving_command(args)
    try:
        config = config_from_args(args)
        # `kill PID` stops a command as Ctrl-C does, also while Beam's worker processes run.
        with stops_like_ctrl_c():
            if args.command == "show-config":
                print(config.to_json())
            elif args.command == "prepare-data":
                from pipeline.inputs import prepare_inputs
                print(prepare_inputs(config).data_dir)
            elif args.command in QUIET_COMMANDS:
                _run_quiet_command(args, config)
            elif args.command == "compile-vertex":
                from pipeline.vertex import compile_from_args
                print(f"semids compile-vertex: wrote {compile_from_args(args, config)}")
            else:
                run_pipeline(config, verbose=args.verbose)
    except (ValueError, RuntimeError, OSError) as e:
        # Our own errors carry the file/row/field; the full trace is in the log file.
        if not _logged_by_quiet_command(args):
            _log_traceback()
        print(f"semids: error: {e}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        # Ctrl-C, or SIGTERM (stops_like_ctrl_c): what finished is kept.
        print(f"semids {args.command}: stopped; what finished is kept, and the same command "
              "resumes from it", file=sys.stderr, flush=True)
        return 130
    except Exception:
        # Anything else: the traceback to the log file, and (re-raised) to the console.
        if not _logged_by_quiet_command(args):
            _log_traceback()
        raise
    return 0


def _logged_by_quiet_command(args: argparse.Namespace) -> bool:
    """_run_quiet_command has written the traceback to its log already."""
    return args.command in QUIET_COMMANDS and not args.verbose


def _log_traceback() -> None:
    """The current exception's traceback to the log file, where `semids run` set one up (with no
    handler, logging's last resort would print it on the console, next to the one-line error)."""
    if logging.getLogger().handlers:
        logging.getLogger(__name__).exception("semids failed")


if __name__ == "__main__":
    sys.exit(main())
