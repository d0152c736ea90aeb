"""CLI verbs for metrics: ``score`` and ``classifier train``. ``score`` also takes a run
directory (or a checkpoint in one), as input or reference: its generator is sampled first
(:func:`improved_gan.training.run_source`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from improved_gan.data.catalog import CLASSIFIER_DATASETS
from improved_gan.errors import ImprovedGANError


def _check_numbers(args: argparse.Namespace, limits: dict[str, tuple[int, int, int | None]]) -> None:
    """Every numeric option in range before any work: ``{dest: (minimum, example, maximum)}``."""
    from improved_gan.metrics.checks import check_int

    for dest, (minimum, example, maximum) in limits.items():
        check_int(getattr(args, dest), "--" + dest.replace("_", "-"), minimum, example, maximum)


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


_SEED_MAX = 2**32 - 1
_CLASSIFIER_LIMITS = {
    "epochs": (1, 6, None),
    "seed": (0, 0, _SEED_MAX),
    "threads": (1, 1, None),
    "max_train_examples": (1, 1000, None),
}
_SCORE_LIMITS = {
    "n": (1, 50000, None),
    "batch_size": (1, 100, None),
    "splits": (1, 10, None),
    "seed": (0, 2020, _SEED_MAX),
    "kid_subsets": (1, 100, None),
    "kid_subset_size": (2, 1000, None),
    "threads": (1, 1, None),
}


def _classifier_output(args: argparse.Namespace) -> Path:
    """Where the classifier goes, checked before training: not a folder, writable, and an existing
    file only with --force."""
    from improved_gan.metrics.checks import check_output_file
    from improved_gan.metrics.classifier import default_classifier_path

    path = Path(args.output) if args.output else default_classifier_path(args.dataset)
    what = "--output" if args.output else "the classifier cache file"
    path = check_output_file(path, what)
    if path.exists() and not args.force:
        raise ImprovedGANError(f"{path} already exists; pass --force to retrain and replace it")
    return path


def _classifier_train(args: argparse.Namespace) -> int:
    from improved_gan.metrics.classifier import TARGET_ACCURACY, train_classifier
    from improved_gan.utils.devices import resolve_device

    _check_numbers(args, _CLASSIFIER_LIMITS)
    device = resolve_device(args.device, "--device")
    path = _classifier_output(args)
    _set_threads(args.threads)
    info = train_classifier(
        args.dataset,
        epochs=args.epochs,
        seed=args.seed,
        data_dir=args.data_dir,
        output=path,
        device=device,
        progress=not args.quiet,
        max_train_examples=args.max_train_examples,
    )
    target = TARGET_ACCURACY[args.dataset]
    verdict = "meets" if info.test_accuracy >= target else "BELOW"
    print(
        f"{info.path}: {args.dataset} test accuracy {100 * info.test_accuracy:.2f}% "
        f"({verdict} the {100 * target:.1f}% target), sha256 {info.sha256[:12]}"
    )
    return 0


MNIST_LIKE = (1, 28, 28)


def resolve_extractor(name: str, source: str, opened=None) -> str:
    """``auto``: a run directory's dataset or a dataset split's dataset when it has a classifier
    (MNIST, Fashion-MNIST); ``mnist`` for ``opened`` images that are all 28×28 grey; else
    ``inception`` (CIFAR-10, SVHN, ImageNet runs, colour images)."""
    from improved_gan.data import DATASET_SPLITS
    from improved_gan.training import RunDir

    if name != "auto":
        return name
    if source in DATASET_SPLITS and not Path(source).exists():
        return source.rsplit("-", 1)[0]
    run = RunDir.find(source)
    if run is not None:
        dataset = run.read_config().dataset
        return dataset if dataset in CLASSIFIER_DATASETS else "inception"
    if opened is not None and opened.image_shape == MNIST_LIKE:
        return "mnist"
    return "inception"


def _input(spec: str | None, n: int | None, run_samples: int = 50000):
    """A run directory as its samples (``n``, default 50,000, noise seed 0); anything else as is."""
    from improved_gan.training import RunDir, run_source

    run = RunDir.find(spec) if spec is not None else None
    return spec if run is None else run_source(run.path, n if n is not None else run_samples)


def _opened_input(spec: str, n: int | None, value_range: str):
    """INPUT as ``(source, opened)``: a run's samples, a folder or array file opened (``opened``:
    so ``auto`` can see its image size), or a dataset split's name as is."""
    from improved_gan.data import DATASET_SPLITS
    from improved_gan.metrics.inputs import open_source

    source = _input(spec, n)
    if source is spec and (Path(spec).exists() or spec not in DATASET_SPLITS):  # a missing file fails here
        opened = open_source(spec, n=n, value_range=value_range)
        return opened, opened
    return source, None


def _precheck_reference(reference: str | None) -> None:
    """A statistics file given as --reference, checked before a run is sampled (the feature size
    is checked again against the extractor once it is loaded)."""
    from improved_gan.metrics.fid import check_statistics
    from improved_gan.metrics.files import npz_names, read_npz

    path = Path(reference) if reference else None
    if path is None or path.suffix.lower() != ".npz" or not path.is_file():
        return
    names = npz_names(path)
    if "mu" in names and "sigma" in names:
        check_statistics(read_npz(path), str(path))


def _load_extractor(name: str, auto: bool, auto_grey: bool, device, args: argparse.Namespace):
    """The extractor. Where ``auto`` chose a dataset classifier that is not trained yet, it is
    trained and cached first (once; not under torchrun or with --no-train-classifier), saying so;
    for 28×28 grey images that ``auto`` sent to the MNIST classifier, one line saying so."""
    import sys

    from improved_gan.metrics.classifier import (
        DEFAULT_EPOCHS,
        MINUTES_PER_EPOCH,
        ClassifierNotFoundError,
        default_classifier_path,
        train_classifier,
    )
    from improved_gan.metrics.extractors import load_extractor
    from improved_gan.utils.distributed import context_from_env

    ctx = context_from_env()
    try:
        extractor = load_extractor(name, device, args.inception_weights)
    except ClassifierNotFoundError as exc:
        if not auto or args.no_train_classifier or ctx.enabled:
            raise ClassifierNotFoundError(
                f"{exc}; or pass --extractor inception" if auto_grey else str(exc)
            ) from None
        path = default_classifier_path(name)
        print(
            f"extractor: no {name} classifier yet; training it once (about "
            f"{MINUTES_PER_EPOCH * DEFAULT_EPOCHS[name]:g} min on 2 CPU cores) into {path}, then scoring",
            file=sys.stderr,
        )
        train_classifier(name, output=path, device=device, progress=not args.quiet)
        extractor = load_extractor(name, device, args.inception_weights)
    if auto_grey and ctx.is_main:
        print(
            f"extractor: {name} classifier (inputs are 28×28 grey; --extractor inception to override)",
            file=sys.stderr,
        )
    return extractor


def _report(args: argparse.Namespace, extractor: str, result: dict) -> None:
    """The human-readable lines: each metric with the features and scale it is in."""
    features = result["features"]
    name = (
        "Inception Score"
        if extractor == "inception"
        else f"{extractor} score (IS with the {extractor} classifier)"
    )
    print(f"{args.input}: {result['n']} images; extractor: {result['extractor']}")
    if "inception_score_mean" in result:
        mean, std = result["inception_score_mean"], result["inception_score_std"]
        print(f"{name}: {mean:.4f} ± {std:.4f}  [{result['is_profile']}]")
    if "frechet_inception_distance" in result:
        fid = result["frechet_inception_distance"]
        print(f"FID ({features}) vs {args.reference} ({result['reference_n']} images): {fid:.4f}")
    if "kernel_inception_distance_mean" in result:
        mean, std = result["kernel_inception_distance_mean"], result["kernel_inception_distance_std"]
        print(
            f"KID ({features}) vs {args.reference}: {mean:.6f} ± {std:.6f} "
            f"(unscaled MMD², as --json; ×10³: {1e3 * mean:.2f} ± {1e3 * std:.2f})"
        )
    if result.get("reference_cache") in ("loaded", "saved"):
        verb = "loaded from" if result["reference_cache"] == "loaded" else "saved to"
        print(f"reference features {verb} {result['reference_cache_path']} (--no-cache to skip)")
    if "saved_reference" in result:
        print(f"statistics saved to {result['saved_reference']}")


def _score(args: argparse.Namespace) -> int:
    import json

    from improved_gan.metrics import score
    from improved_gan.metrics.score import check_save_target
    from improved_gan.utils.devices import resolve_device
    from improved_gan.utils.distributed import init_distributed

    _check_numbers(args, _SCORE_LIMITS)
    device = resolve_device(args.device, "--device")
    if args.save_reference is not None:
        check_save_target(args.save_reference, args.reference)
    _precheck_reference(args.reference)
    _set_threads(args.threads)
    ctx, device, _ = init_distributed(device)  # under torchrun: sharded extraction
    source, opened = _opened_input(args.input, args.n, args.value_range)
    name = resolve_extractor(args.extractor, args.input, opened)
    auto_grey = args.extractor == "auto" and opened is not None and name == "mnist"
    extractor = _load_extractor(name, args.extractor == "auto", auto_grey, device, args)
    result = score(
        source,
        metrics=args.metric,
        extractor=extractor,
        reference=_input(args.reference, None),
        n=None if source is not args.input else args.n,
        batch_size=args.batch_size,
        splits=args.splits,
        shuffle=args.shuffle,
        seed=args.seed,
        kid_subsets=args.kid_subsets,
        kid_subset_size=args.kid_subset_size,
        value_range=args.value_range,
        device=device,
        inception_weights=args.inception_weights,
        save_reference=args.save_reference if ctx.is_main else None,
        progress=not args.quiet and ctx.is_main,
        cache=not args.no_cache,
    )
    if not ctx.is_main:  # rank 0 alone reports
        return 0
    if args.json:
        print(json.dumps({"input": args.input, "reference": args.reference, **result}))
    else:
        _report(args, extractor.name, result)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "score",
        help="Inception Score / dataset score, FID and KID of images, a run or a dataset",
        description="Score INPUT: a run directory (samples N images), a folder of images, an .npz/.npy "
        "of images, or a dataset split (mnist-test, mnist-train, fashion-mnist-test, fashion-mnist-train).",
    )
    p.add_argument("input", help="run directory, image folder, .npz/.npy file or dataset split name")
    p.add_argument(
        "--metric", nargs="+", choices=["is", "fid", "kid"], default=["is"], help="metrics (default is)"
    )
    p.add_argument(
        "--extractor",
        choices=["auto", "inception", *CLASSIFIER_DATASETS],
        default="auto",
        help="features: the reference Inception-v3 or a dataset classifier (auto: the run's or "
        "split's dataset; mnist for 28×28 grey images; else inception)",
    )
    p.add_argument("--reference", help="for FID/KID: statistics .npz (--save-reference) or any INPUT kind")
    p.add_argument("--n", type=int, help="number of images (run directories: samples drawn, default 50000)")
    p.add_argument("--batch-size", type=int, help="extractor batch size")
    p.add_argument("--splits", type=int, default=10, help="Inception Score splits (reference: 10)")
    p.add_argument(
        "--shuffle",
        action="store_true",
        help="shuffle before splitting (torch-fidelity: --shuffle --seed 2020)",
    )
    p.add_argument("--seed", type=int, help="seed of the shuffle")
    p.add_argument("--kid-subsets", type=int, default=100, help="KID: random subsets averaged (default 100)")
    p.add_argument(
        "--kid-subset-size", type=int, default=1000, help="KID: images per subset, each side (default 1000)"
    )
    p.add_argument(
        "--value-range", choices=["auto", "-1,1", "0,1"], default="auto", help="range of float images"
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--threads", type=int, help="CPU threads for PyTorch")
    p.add_argument("--inception-weights", help="path of weights-inception-2015-12-05-6726825d.pth")
    p.add_argument("--save-reference", help="also save INPUT's feature statistics to this .npz")
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="extract --reference features afresh, neither reading nor writing "
        "$XDG_CACHE_HOME/improved_gan/features",
    )
    p.add_argument(
        "--no-train-classifier",
        action="store_true",
        help="where --extractor auto needs a dataset classifier that is not trained yet, stop with the "
        "command to train it instead of training it first",
    )
    p.add_argument(
        "--json", action="store_true", help="print one JSON object (torch-fidelity's metric key names)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_score)

    p = subparsers.add_parser(
        "classifier", help="train and cache the dataset classifiers behind the MNIST score"
    )
    sub = p.add_subparsers(dest="classifier_command", metavar="ACTION", required=True)
    t = sub.add_parser(
        "train",
        help="train the classifier of a dataset and cache it",
        description="Train the small CNN used for the dataset score and FID/KID features, and cache it "
        "in $XDG_CACHE_HOME/improved_gan/classifiers (default ~/.cache/...).",
    )
    t.add_argument("dataset", choices=CLASSIFIER_DATASETS, help="the dataset whose classifier to train")
    t.add_argument("--epochs", type=int, help="training epochs (default: 6 for mnist, 12 for fashion-mnist)")
    t.add_argument("--seed", type=int, default=0, help="seed of initialisation and data order (default 0)")
    t.add_argument("--data-dir", help="data root holding mnist/, fashion-mnist/")
    t.add_argument("--output", help="where to write the classifier (default: the cache)")
    t.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    t.add_argument("--threads", type=int, help="CPU threads for PyTorch (1 is fastest on a busy machine)")
    t.add_argument("--force", action="store_true", help="replace an existing cached classifier")
    t.add_argument("--max-train-examples", type=int, help="train on the first N images only (quick checks)")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=_classifier_train)
