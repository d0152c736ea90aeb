"""CLI verb ``predict``: class names and probabilities of image files from a trained run."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from improved_gan.errors import ImprovedGANError


def _predict(args: argparse.Namespace) -> int:
    from improved_gan.training import load_classifier, predict_files

    out = Path(args.out) if args.out else None
    if out is not None and (out.is_dir() or not out.parent.is_dir()):
        raise ImprovedGANError(f"--out {out}: not a file in an existing folder; pass e.g. --out preds.csv")
    classifier = load_classifier(args.run_dir, use_ema=not args.raw, device=args.device)
    predictions = predict_files(classifier, args.paths, args.batch_size, progress=not args.quiet)
    if args.json:
        text = "".join(json.dumps(p.__dict__) + "\n" for p in predictions)
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["path", "label", "probability"])
        writer.writerows([_cell(p.path), _cell(p.label), f"{p.probability:.6f}"] for p in predictions)
        text = buffer.getvalue()
    if out is None:
        sys.stdout.write(text)
        return 0
    from improved_gan.utils.atomic import write_atomically

    try:
        write_atomically(out, text)
    except OSError as exc:
        raise ImprovedGANError(
            f"cannot write {out} ({exc.strerror or exc}); free disk space or choose another --out"
        ) from None
    print(f"{len(predictions)} predictions -> {out}", file=sys.stderr)
    return 0


def _cell(text: str) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (leading = + - @ quoted)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="classify image files with a trained run (CSV: path,label,probability)",
        description="Each image's most probable class and its probability, from the run's discriminator "
        "(the K real-class logits, test-time EMA weights). Images are converted to the model's input "
        "(grey or RGB, centre crop and resize) as the run's training images were.",
    )
    p.add_argument("run_dir", help="a run directory written by `improved-gan train`")
    p.add_argument(
        "paths", nargs="+", help="image files (PNG, JPEG, BMP) or folders of them (searched recursively)"
    )
    p.add_argument("--out", help="write the CSV (or JSON lines) here instead of standard output")
    p.add_argument("--json", action="store_true", help="JSON lines {path, label, probability} instead of CSV")
    p.add_argument("--batch-size", type=int, default=500, help="images per forward pass (default 500)")
    p.add_argument("--raw", action="store_true", help="the raw weights instead of the test-time EMA")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_predict)
