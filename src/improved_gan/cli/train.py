"""CLI verbs for training: ``train``, ``evaluate``, ``reproduce``, ``presets``."""

from __future__ import annotations

import argparse
import json
import sys

from improved_gan.errors import ImprovedGANError


def _train(args: argparse.Namespace) -> int:
    from improved_gan.training import train
    from improved_gan.utils.distributed import context_from_env

    overrides = {
        "labels": args.labels,
        "seed": args.seed,
        "seed_data": args.seed_data,
        "epochs": args.epochs,
        "data_dir": args.data_dir,
        "run_dir": args.run_dir,
        "device": args.device,
        "threads": args.threads,
    }
    if args.data:
        from improved_gan.data.own_data import parse_data_spec

        if args.data_dir:
            raise ImprovedGANError("--data and --data-dir name the data twice; pass one of them")
        kind, path = parse_data_spec(args.data)
        overrides.update(dataset=kind, data_dir=str(path.resolve()))
    if args.seeds:
        return _train_seeds(args, overrides)
    config = _config(args, overrides)
    run_dir = train(config, resume=args.resume, progress=not args.quiet)
    if not context_from_env().is_main:  # under torchrun, rank 0 alone reports
        return 0
    return _report(run_dir)


def _train_seeds(args: argparse.Namespace, overrides: dict) -> int:
    """``train --seeds 1 2 3``: the seeds' runs trained in one process as one batched model."""
    from improved_gan.training.batched import train_batched

    if args.seed is not None:
        raise ImprovedGANError("--seed and --seeds both name seeds; pass one of them")
    if args.run_dir:
        raise ImprovedGANError(
            "--run-dir names one run, but --seeds trains several; leave it out (each seed gets "
            "runs/<preset>-...-s<seed>) or put them elsewhere with --set runs_root=DIR"
        )
    if len(set(args.seeds)) < len(args.seeds):
        raise ImprovedGANError(
            f"--seeds names a seed twice ({' '.join(map(str, args.seeds))}); give each once"
        )
    configs = [_config(args, {**overrides, "seed": seed}) for seed in args.seeds]
    for run_dir in train_batched(configs, resume=args.resume, progress=not args.quiet):
        _report(run_dir)
    return 0


def _report(run_dir) -> int:
    """Print a finished run's last test errors (and what to expect), and plot its learning curves."""
    from improved_gan.training import RunDir
    from improved_gan.training.expectations import expectation_line

    run = RunDir(run_dir)
    records = run.read_metrics()
    if records:
        _plot(run_dir)
    if not records:  # e.g. a resumed run whose metrics were removed
        print(f"{run_dir}: epoch {run.completed_epoch()}; no metrics in {run.metrics_path}")
        return 0
    last = records[-1]
    if last.get("test_errors") is None:  # an unsupervised run
        print(f"{run_dir}: epoch {last['epoch']}, unsupervised; details in {run.metrics_path}")
        return 0
    print(
        f"{run_dir}: epoch {last['epoch']}, test errors {last['test_errors']} "
        f"({100 * last['test_error']:.2f}%); details in {run.metrics_path}"
    )
    expected = expectation_line(run.read_config(), last["epoch"])
    if expected:
        print(expected)
    return 0


def _config(args: argparse.Namespace, overrides: dict):
    """The config to train: the preset or YAML file with the flags and ``--set`` items, except
    that ``--resume`` of a run made from a preset starts from the run's own ``config.yaml``."""

    from improved_gan.training import RunDir, load_config
    from improved_gan.training.config import names_a_file
    from improved_gan.utils.distributed import context_from_env

    if args.config is None:
        if not (args.resume and args.run_dir):
            raise ImprovedGANError(
                "name a preset or YAML file to train (see `improved-gan presets`), or continue a run with "
                "--resume --run-dir DIR"
            )
        return RunDir(args.run_dir).resumed_config(overrides, args.set)
    config = load_config(args.config, overrides, args.set)
    if not args.resume:
        return config
    run = RunDir(config.run_dir or config.default_run_dir())
    if run.config_path.is_file() and not names_a_file(
        args.config
    ):  # a file holds every setting: it is compared as it is
        return run.resumed_config(overrides, args.set, preset=args.config)
    held = (run.config_path, run.metrics_path, run.checkpoint_path)
    if not any(p.exists() for p in held) and context_from_env().is_main:
        _nothing_to_resume(run.path, config)
    return config


def _nothing_to_resume(path, config) -> None:
    """Say that ``--resume`` starts a new run, and name runs of the same preset, labels and seed
    that were trained under other settings (their default directories end in a hash)."""
    root = path.parent
    others = sorted(
        p.name
        for p in root.glob(f"{config.preset}-*-l{config.labels}-s{config.seed}*")
        if p != path and (p / "config.yaml").is_file()
    )
    hint = (
        f" ({', '.join(others)} in {root} had other settings: pass --run-dir to resume one)" if others else ""
    )
    print(f"warning: nothing to resume in {path}; starting a new run there{hint}", file=sys.stderr)


def _plot(run_dir) -> None:
    """The run's learning curves as ``learning_curves.png``; a failure to plot is only a warning."""
    from improved_gan.analysis.learning_curves import plot_learning_curves

    try:
        print(f"learning curves: {plot_learning_curves(run_dir)}")
    except (ImprovedGANError, OSError, ValueError) as exc:
        print(f"improved-gan: warning: no learning-curve plot ({exc})", file=sys.stderr)


def _evaluate(args: argparse.Namespace) -> int:
    from improved_gan.training import evaluate_run

    result = evaluate_run(args.run_dir, use_ema=not args.raw, data_dir=args.data_dir)
    if args.json:
        print(json.dumps({"run_dir": str(args.run_dir), **result}))
    else:
        print(
            f"{args.run_dir}: epoch {result['epoch']}, test errors {result['test_errors']} of {result['n']} "
            f"({100 * result['test_error']:.2f}%)"
        )
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from improved_gan.reproduce import reproduce_ssl_table, reproduce_table3

    if args.table == "table3":
        markdown, _ = reproduce_table3(
            presets=args.presets,
            labels=args.labels[0] if args.labels else None,
            seeds=args.seeds or [1],
            epochs=args.epochs,
            runs_root=args.runs_root or "runs/table3",
            samples=args.samples,
            train_missing=not args.collect_only,
            data_dir=args.data_dir,
            set_items=args.set,
            device=args.score_device,
            inception_weights=args.inception_weights,
            progress=not args.quiet,
        )
    else:
        markdown, _ = reproduce_ssl_table(
            args.table,
            labels=args.labels,
            seeds=args.seeds or list(range(1, 11)),
            epochs=args.epochs,
            runs_root=args.runs_root,
            preset=args.preset,
            train_missing=not args.collect_only,
            data_dir=args.data_dir,
            set_items=args.set,
            progress=not args.quiet,
            batched=not args.one_at_a_time,
        )
    print(markdown)
    return 0


def _presets(args: argparse.Namespace) -> int:
    from improved_gan.training.config import load_config, preset_names, preset_summary
    from improved_gan.utils.text import plural

    names = preset_names()
    if args.names:
        print("\n".join(names))
        return 0
    width = max(map(len, names))
    for name in names:
        config = load_config(name)
        labels = f"{config.labels} labels" if config.labels else "no labels"
        print(f"{name:<{width}}  {config.dataset}, {labels}, {plural(config.epochs, 'epoch')}")
        print(f"{'':<{width}}  {preset_summary(name)}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a semi-supervised GAN from a preset or YAML config",
        description="Train from a preset (see `improved-gan presets`) or a YAML file; flags and --set override it.",
    )
    p.add_argument(
        "config",
        nargs="?",
        help="preset name (e.g. mnist-fm, mnist-fm-2016) or path to a YAML config; with --resume and "
        "--run-dir it may be left out (the run's own config.yaml is used)",
    )
    p.add_argument("--labels", type=int, help="number of labelled examples (class-balanced), e.g. 100")
    p.add_argument("--seed", type=int, help="seed for weights, noise and batch order (default 1)")
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        metavar="SEED",
        help="train one run per seed in one process, as one batched model (MNIST MLP presets); each run "
        "gets its own run directory and takes the random draws of training that seed alone",
    )
    p.add_argument("--seed-data", type=int, help="seed choosing the labelled subset (default: --seed)")
    p.add_argument("--epochs", type=int, help="number of epochs (paper: 300)")
    p.add_argument(
        "--data-dir",
        help="data root holding mnist/, fashion-mnist/, cifar10/, svhn/, imagefolder/ (else $IMPROVED_GAN_DATA, ...)",
    )
    p.add_argument(
        "--data",
        metavar="folder:DIR|npz:FILE",
        help="your own images: DIR holds train/<class>/* (optionally unlabelled/*, test/<class>/*), or an .npz "
        "with x and y (-1: unlabelled); converted to the preset model's input (README 'Your own data')",
    )
    p.add_argument(
        "--run-dir",
        help="run directory (default runs/<preset>-<dataset>-l<labels>-s<seed>, plus a hash of any other "
        "settings that differ from the preset's)",
    )
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where to train (default auto)")
    p.add_argument("--threads", type=int, help="CPU threads for PyTorch")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in the run directory under its own config.yaml (flags and --set may change "
        "only runtime settings such as --epochs); where there is no run, start one",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_train)

    p = subparsers.add_parser(
        "evaluate",
        help="print the test errors of a run's discriminator",
        description="Classify the run's test set with its last checkpoint (the test-time weights: the EMA "
        "average where the run keeps one) and print the errors.",
    )
    p.add_argument("run_dir", help="a run directory written by `improved-gan train` (holds config.yaml)")
    p.add_argument("--raw", action="store_true", help="use the raw weights instead of the test-time average")
    p.add_argument("--data-dir", help="data root, if the data moved since training (default: the run's own)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_evaluate)

    p = subparsers.add_parser(
        "reproduce",
        help="reproduce a table of the paper (table1, table2, svhn, table3)",
        description="table1: MNIST (mnist-fm-2016); table2: CIFAR-10 (cifar10-fm); svhn: SVHN (svhn-fm); "
        "table3: CIFAR-10 Inception Scores of the table3-* presets. Defaults are the paper's labels, "
        "epochs and 10 seeds (1 seed for table3).",
    )
    p.add_argument(
        "table", choices=["table1", "table2", "svhn", "table3"], help="the paper's table to rebuild"
    )
    p.add_argument(
        "--labels",
        type=int,
        nargs="+",
        help="label counts (default: the paper's columns; table3: one count for its labelled rows)",
    )
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default 1..10; table3: 1)")
    p.add_argument("--epochs", type=int, help="epochs per run (default: the preset's / the paper's)")
    p.add_argument("--preset", help="preset (default: mnist-fm-2016, cifar10-fm or svhn-fm)")
    p.add_argument(
        "--presets",
        nargs="+",
        default=["table3-all", "table3-vbn+bn", "table3-l+ha", "table3-ls", "table3-l", "table3-mbf"],
        help="table3: the rows to train and score",
    )
    p.add_argument("--samples", type=int, default=50000, help="table3: samples scored per run")
    p.add_argument("--score-device", default="cpu", help="table3: device for the Inception network")
    p.add_argument("--inception-weights", help="table3: path of the converted Inception weights")
    p.add_argument("--runs-root", help="where the runs and the table go (default runs/<table>)")
    p.add_argument("--data-dir", help="data root (as for train)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key of every run"
    )
    p.add_argument("--collect-only", action="store_true", help="only collect finished runs, train nothing")
    p.add_argument(
        "--one-at-a-time",
        action="store_true",
        help="train the runs one after another instead of as one batched model (table1: all label "
        "counts and seeds in one process by default)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_reproduce)

    p = subparsers.add_parser(
        "presets", help="list the training presets with their data and what they reproduce"
    )
    p.add_argument("--names", action="store_true", help="print the bare names only, one per line")
    p.set_defaults(func=_presets)
