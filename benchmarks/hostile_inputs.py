"""Count the hostile inputs the suite throws at the package, and how many are refused cleanly.

Two sources, both run here:

1. every test marked ``hostile`` (one hostile input per test id: a bad flag, a doctored file, a
   fuzzed loader, a leak check), run through pytest and counted per test file;
2. a few cases through the installed ``improved-gan`` command in a fresh process each, which
   also catches what an in-process test cannot: a crash by signal (the old CIFAR unpickler
   segfaulted), a traceback on stderr, output on more than one line.

"Refused cleanly" means: exit status 1, one line ``improved-gan: error: …`` on stderr naming
the problem, no traceback, and the user's files unchanged.

    python benchmarks/hostile_inputs.py [--write]   # --write: also the BENCHMARKS.md section
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import pickle
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import ROOT, command, commit, machine, write_section  # noqa: E402


def run_marked_tests() -> tuple[dict[str, collections.Counter], float]:
    """Run ``pytest -m hostile``; per test file: tried, passed, failed, skipped."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-m",
                "hostile",
                "-p",
                "no:cacheprovider",
                f"--junitxml={report}",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if not report.exists():
            raise SystemExit(f"pytest wrote no report:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        root = ET.parse(report).getroot()
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    seconds = 0.0
    for case in root.iter("testcase"):
        parts = case.get("classname", "").split(".")
        area = next((p for p in parts if p.startswith("test_")), "?") + ".py"
        seconds += float(case.get("time", 0))
        outcome = "passed"
        if case.find("skipped") is not None:
            outcome = "skipped"
        elif case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        counts[area][outcome] += 1
    return counts, seconds


def _hashes(folder: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def _lost(before: dict[Path, str], folder: Path) -> bool:
    """Whether a file that was there before was changed or removed (new files are allowed)."""
    after = _hashes(folder)
    return any(after.get(p) != h for p, h in before.items())


def _malicious_cifar(folder: Path) -> Path:
    """A CIFAR-10 python batch whose labels are an object-dtype array laid over raw bytes."""
    import numpy as np

    class Evil:
        def __reduce__(self):
            arr = np.frombuffer(b"\x41" * 80, dtype=np.uint8)
            return (np.ndarray, ((10,), np.dtype(object), arr.tobytes()))

    batch = folder / "cifar10" / "cifar-10-batches-py"
    batch.mkdir(parents=True)
    data = {b"data": np.zeros((10, 3072), np.uint8), b"labels": Evil()}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (batch / name).write_bytes(pickle.dumps(data, protocol=2))
    (batch / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"x"] * 10}, protocol=2))
    return folder


def process_cases(tmp: Path) -> list[tuple[str, list[str]]]:
    """(name, argv) of the cases run through the real command."""
    import numpy as np
    from PIL import Image

    (tmp / "afile").write_text("not a directory")
    (tmp / "empty").mkdir()
    bomb = tmp / "bomb"
    bomb.mkdir()
    Image.new("L", (28, 28)).save(bomb / "ok.png")
    (bomb / "big.png").write_bytes(_png_header(100_000, 100_000))
    digits = tmp / "digits"
    digits.mkdir()
    for i in range(8):
        Image.fromarray(np.full((28, 28), 30 * i, np.uint8)).save(digits / f"{i}.png")
    np.save(tmp / "object.npy", np.array([{"a": 1}] * 4, dtype=object), allow_pickle=True)
    (tmp / "garbage.npz").write_bytes(os.urandom(512))
    dup = tmp / "dup.yaml"
    dup.write_text("preset: x\nlr: 0.001\nlr: 0.1\n")
    cifar = _malicious_cifar(tmp / "cifar")
    orphan = tmp / "orphan"  # a run whose config.yaml was lost: its settings are unknown
    orphan.mkdir()
    (orphan / "metrics.jsonl").write_text('{"epoch": 1, "test_errors": 5000}\n')
    runs = iter(range(1000))

    def train(*extra: str) -> list[str]:
        small = [
            "--set",
            "max_train_examples=200",
            "--set",
            "max_test_examples=100",
            "--set",
            "init_examples=100",
        ]
        run = str(tmp / f"run{next(runs)}")
        return ["train", "mnist-fm", "--quiet", "--epochs", "1", *small, "--run-dir", run, *extra]

    def train_again(*extra: str, preset: str = "mnist-fm") -> list[str]:
        """Resume the one finished tiny run (trained by :func:`run_process_cases`) under ``extra``."""
        return ["train", preset, "--quiet", "--run-dir", str(tmp / "finished"), *extra]

    return [
        ("train --data-dir that does not exist", train("--data-dir", str(tmp / "missing"))),
        ("train --data-dir that is a file", train("--data-dir", str(tmp / "afile"))),
        ("train lr=nan", train("--set", "lr=nan")),
        ("train unlabeled_weight=inf", train("--set", "unlabeled_weight=inf")),
        ("train --seed -1", train("--seed", "-1")),
        ("train --seed 2**32", train("--seed", str(2**32))),
        ("train --threads -1", train("--threads", "-1")),
        ("train max_train_examples=0", train("--set", "max_train_examples=0")),
        (
            "train YAML with a duplicate key",
            ["train", str(dup), "--quiet", "--run-dir", str(tmp / "dup-run")],
        ),
        ("train --resume of metrics without config.yaml", ["train", "--resume", "--run-dir", str(orphan)]),
        ("train --resume under another lr", train_again("--resume", "--set", "lr=0.5")),
        ("train --resume under another preset", train_again("--resume", preset="mnist-fm-2016")),
        ("train --run-dir that is a file", ["train", "mnist-fm", "--quiet", "--run-dir", str(tmp / "afile")]),
        (
            "train cifar10 on an object-dtype pickle",
            [
                "train",
                "cifar10-fm",
                "--quiet",
                "--epochs",
                "1",
                "--data-dir",
                str(cifar),
                "--run-dir",
                str(tmp / "c"),
            ],
        ),
        ("score a decompression-bomb PNG", ["score", str(bomb), "--extractor", "mnist"]),
        ("score an object-dtype .npy", ["score", str(tmp / "object.npy"), "--extractor", "mnist"]),
        ("score a garbage .npz", ["score", str(tmp / "garbage.npz"), "--extractor", "mnist"]),
        ("score an empty folder", ["score", str(tmp / "empty"), "--extractor", "mnist"]),
        ("evaluate a folder that is no run", ["evaluate", str(tmp / "empty")]),
        ("turing report on a file that is no study", ["turing", "report", str(tmp / "afile")]),
        (
            "turing serve --port 99999",
            [
                "turing",
                "serve",
                "--real",
                str(digits),
                "--fake",
                str(digits),
                "--db",
                str(tmp / "s.db"),
                "--per-rater",
                "4",
                "--port",
                "99999",
            ],
        ),
    ]


def _png_header(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def run_process_cases() -> list[tuple[str, bool, str]]:
    """(name, refused cleanly, what happened) for each case, each in a fresh process."""
    results = []
    exe = Path(sys.executable).with_name("improved-gan")
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as cache:
        tmp_path = Path(tmp)
        cases = process_cases(tmp_path)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "XDG_CACHE_HOME": cache}
        env.pop("IMPROVED_GAN_DATA", None)
        finished = ["train", "mnist-fm", "--quiet", "--epochs", "1", "--run-dir", str(tmp_path / "finished")]
        small = ["max_train_examples=200", "max_test_examples=100", "init_examples=100"]
        subprocess.run(
            [str(exe), *finished, *(w for item in small for w in ("--set", item))], check=True, env=env
        )
        for name, argv in cases:
            before = _hashes(tmp_path)
            try:
                proc = subprocess.run([str(exe), *argv], capture_output=True, text=True, timeout=300, env=env)
            except subprocess.TimeoutExpired:
                results.append((name, False, "ran past 300 s"))
                continue
            lines = [s for s in proc.stderr.splitlines() if s.strip() and not s.startswith("warning:")]
            changed = _lost(before, tmp_path)
            one_line = len(lines) == 1 and lines[0].startswith("improved-gan: error: ")
            bad_text = "Traceback" in proc.stderr or "internal error" in proc.stderr
            if proc.returncode < 0:
                what = f"killed by signal {-proc.returncode}"
            elif proc.returncode == 0:
                what = "exit 0: accepted"
            elif bad_text:
                what = "traceback" if "Traceback" in proc.stderr else "internal error (catch-all)"
            elif not one_line:
                what = f"{len(lines)} lines on stderr"
            else:
                what = lines[0].removeprefix("improved-gan: error: ")
            clean = proc.returncode == 1 and one_line and not bad_text and not changed
            if changed and proc.returncode == 1:
                what += " (a file the user had was changed or removed)"
            results.append((name, clean, what))
    return results


def report(counts, seconds, processes) -> str:
    tried = sum(sum(c.values()) - c["skipped"] for c in counts.values())
    clean = sum(c["passed"] for c in counts.values())
    lines = [
        "## Hostile inputs refused cleanly (issue 16, `benchmarks/hostile_inputs.py`)",
        "",
        f"- command: `{command()}`; commit: `{commit()}`; machine: {machine()}",
        "- refused cleanly = exit status 1, one line `improved-gan: error: …` naming the problem and the fix, "
        "no traceback, every file the user had unchanged (for loaders: only `ImprovedGANError`, never another exception).",
        "",
        f"**Tests marked `hostile`: {clean} of {tried} refused cleanly** ({seconds:.0f} s of tests).",
        "",
        "| test file | tried | refused cleanly | failed | skipped |",
        "|---|---:|---:|---:|---:|",
    ]
    for area, c in sorted(counts.items()):
        lines.append(
            f"| `{area}` | {sum(c.values()) - c['skipped']} | {c['passed']} | {c['failed']} | {c['skipped']} |"
        )
    ok = sum(clean for _, clean, _ in processes)
    lines += [
        "",
        f"**Through the `improved-gan` command, each in a fresh process: {ok} of {len(processes)} refused cleanly.**",
        "",
        "| case | clean | what the user sees |",
        "|---|:-:|---|",
    ]
    for name, is_clean, what in processes:
        lines.append(f"| {name} | {'yes' if is_clean else '**no**'} | {what.replace('|', '/')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="also write the BENCHMARKS.md section")
    parser.add_argument("--no-tests", action="store_true", help="only the fresh-process cases")
    args = parser.parse_args()
    counts, seconds = ({}, 0.0) if args.no_tests else run_marked_tests()
    text = report(counts, seconds, run_process_cases())
    print(text)
    if args.write:
        write_section("hostile_inputs", text)


if __name__ == "__main__":
    main()
