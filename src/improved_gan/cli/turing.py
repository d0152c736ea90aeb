"""CLI verbs of the human evaluation: ``turing serve`` and ``turing report``."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    turing = subparsers.add_parser(
        "turing",
        help="human evaluation: the paper's visual Turing test (real or generated?) as a web page",
        description="Run the visual Turing test of Salimans et al. 2016 (section 4) and read its results.",
    )
    verbs = turing.add_subparsers(dest="turing_command", metavar="VERB", required=True)

    serve = verbs.add_parser(
        "serve",
        help="serve the rating page",
        description="Serve the rating page. The first run stores the images in --db; a restart with the "
        "same --db (and the same sources, or none) continues the study.",
    )
    serve.add_argument(
        "--real",
        help="real images: a folder of PNG/JPEG, an .npz (key 'images'), "
        "or mnist / fashion-mnist (test split)",
    )
    serve.add_argument(
        "--fake",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help="generated images: a training run directory, a folder or an .npz (optional key "
        "'scores'); repeat for several models (default name: the folder or file name)",
    )
    serve.add_argument(
        "--feedback",
        nargs="?",
        const="on",
        default="off",
        choices=["on", "off", "random"],
        help="tell raters after each answer whether they were right (the paper's feedback "
        "condition); 'random' puts each rater in one condition at random (default: off)",
    )
    serve.add_argument("--db", default="study.sqlite", help="study database (default: study.sqlite)")
    serve.add_argument("--per-rater", type=int, default=40, help="images per rater, half real (default: 40)")
    serve.add_argument(
        "--images",
        type=int,
        default=500,
        dest="images_per_source",
        help="images kept per source, a random subset (default: 500)",
    )
    serve.add_argument(
        "--seed", type=int, default=0, help="seed of the subsets and of run sampling (default: 0)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1 only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.add_argument(
        "--admin-token",
        help="token of the /admin page, kept in --db (default: the study's own, random, made once)",
    )
    serve.add_argument(
        "--new-admin-token",
        action="store_true",
        help="replace the study's admin token with a new random one (the old link stops working)",
    )
    serve.add_argument("--secure-cookies", action="store_true", help="mark cookies Secure (behind HTTPS)")
    serve.add_argument(
        "--origin",
        action="append",
        default=[],
        dest="origins",
        metavar="URL",
        help="public origin of the page behind a proxy, e.g. https://study.example.org (repeatable)",
    )
    serve.set_defaults(func=_serve)

    report = verbs.add_parser(
        "report",
        help="accuracy per model and rater, feedback split; Markdown, PNG chart and CSV",
        description="Print the study's results and write report.md, report.png, answers.csv "
        "and images.csv (how often each image was called real).",
    )
    report.add_argument("db", help="study database written by `turing serve`")
    report.add_argument("--out", help="output folder (default: <db name>_report next to the database)")
    report.add_argument(
        "--force", action="store_true", help="overwrite the files of an earlier report in --out"
    )
    report.add_argument(
        "--top-percent",
        type=float,
        default=1.0,
        help="the paper's filter: also report each scored model's top P %% by score (default: 1)",
    )
    report.add_argument(
        "--include-unfinished",
        action="store_true",
        help="also count the answers of sessions not completed (default: completed sessions only)",
    )
    report.set_defaults(func=_report)


def _serve(args: argparse.Namespace) -> int:
    from improved_gan.evaluation.turing_app import serve

    return serve(
        args.db,
        args.real,
        args.fake,
        feedback=args.feedback,
        per_rater=args.per_rater,
        host=args.host,
        port=args.port,
        images_per_source=args.images_per_source,
        seed=args.seed,
        admin_token=args.admin_token,
        secure_cookies=args.secure_cookies,
        origins=args.origins,
        new_admin_token=args.new_admin_token,
    )


def _report(args: argparse.Namespace) -> int:
    from improved_gan.evaluation.report import write_report

    files = write_report(
        args.db, args.out, args.top_percent, force=args.force, include_unfinished=args.include_unfinished
    )
    print(files.summary, end="")
    print(
        f"\nwrote {files.markdown} (with a per-image table), {files.chart}, {files.csv}, {files.images_csv}"
    )
    return 0
