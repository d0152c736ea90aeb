"""Load test of the visual Turing test server (issue 6): concurrent raters against 127.0.0.1.

    PYTHONPATH=src python benchmarks/turing_load.py                    # 50 raters × 40 answers
    PYTHONPATH=src python benchmarks/turing_load.py --kill-restart     # SIGKILL the server halfway
    PYTHONPATH=src python benchmarks/turing_load.py --write            # also update BENCHMARKS.md

The server is ``improved-gan turing serve`` in its own process (one uvicorn worker, SQLite WAL,
``synchronous=FULL``) on a study of random 28×28 images (a real set and two models, 500 each).
Every rater has its own cookies and does what the page's JavaScript does: open the start page,
start, load the rating page, then per image fetch it and post the answer. Latency is measured
per request on the client. "Answers lost" counts answers the server acknowledged (HTTP 200) that
are not in the database afterwards. With ``--kill-restart`` the server is killed (SIGKILL) once
half the answers are in and started again on the same database; raters retry after connection
errors, and a lost reply whose answer was committed shows up as the next image (no double count).
Bounded: at most 200 raters × 200 answers, and a wall-clock limit (``--time-limit``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TRIAL = re.compile(r'name="trial" id="trial" value="([^"]+)"')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
JSON = {"accept": "application/json"}


@dataclass
class Stats:
    answer_ms: list[float] = field(default_factory=list)
    image_ms: list[float] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    errors: dict[str, int] = field(default_factory=dict)
    retried: int = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def make_study(folder: Path) -> list[str]:
    rng = np.random.default_rng(0)
    sources = []
    for name in ("real", "model_a", "model_b"):
        path = folder / f"{name}.npz"
        np.savez(path, images=rng.integers(0, 256, (500, 28, 28), dtype=np.uint8))
        sources.append(str(path))
    return ["--real", sources[0], "--fake", sources[1], "--fake", sources[2]]


def start_server(db: Path, port: int, per_rater: int, sources: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [
        sys.executable,
        "-m",
        "improved_gan",
        "turing",
        "serve",
        "--db",
        str(db),
        "--port",
        str(port),
        "--per-rater",
        str(per_rater),
        *sources,
    ]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start within 120 s")


async def rater(
    base: str, index: int, answers: int, stats: Stats, progress: asyncio.Event, total: int, think_ms: float
) -> None:
    rng = np.random.default_rng(index)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def retrying(make) -> httpx.Response:
            for attempt in range(60):
                try:
                    return await make()
                except httpx.TransportError:
                    stats.retried += 1
                    await asyncio.sleep(0.25 + 0.05 * attempt)
            raise RuntimeError("server unreachable")

        start = await retrying(lambda: client.get("/"))
        csrf = CSRF.search(start.text).group(1)
        page = await retrying(
            lambda: client.post("/start", data={"csrf": csrf, "name": f"load-{index}"}, follow_redirects=True)
        )
        done = 0
        while done < answers:
            found = TRIAL.search(page.text)
            if not found:
                break
            trial, csrf = found.group(1), CSRF.search(page.text).group(1)
            while True:
                t0 = time.perf_counter()
                try:
                    image = await client.get(f"/img/{trial}")
                except httpx.TransportError:
                    stats.error("image: connection refused or reset")
                    stats.retried += 1
                    await asyncio.sleep(0.3)
                    continue
                stats.image_ms.append(1000 * (time.perf_counter() - t0))
                if image.status_code != 200:
                    stats.error(f"image: HTTP {image.status_code}")
                if think_ms:  # a person looking at the image: 0.5 to 1.5 times --think-ms
                    await asyncio.sleep(think_ms * rng.uniform(0.5, 1.5) / 1000)
                t0 = time.perf_counter()
                try:
                    reply = await client.post(
                        "/answer",
                        headers=JSON,
                        data={
                            "csrf": csrf,
                            "trial": trial,
                            "answer": "real" if (index + done) % 2 else "fake",
                            "client_ms": "700",
                        },
                    )
                except httpx.TransportError:
                    stats.error("answer: connection refused or reset")
                    break  # reload the page: a committed answer shows as the next image
                stats.answer_ms.append(1000 * (time.perf_counter() - t0))
                if reply.status_code == 200:
                    stats.acknowledged.add(trial)
                    done += 1
                    if len(stats.acknowledged) * 2 >= total:
                        progress.set()
                    data = reply.json()
                    if "next" not in data:
                        return
                    trial = data["next"]["trial"]
                    if done >= answers:
                        return
                    continue
                stats.error(f"answer: HTTP {reply.status_code}")
                break
            page = await retrying(lambda: client.get("/rate"))
            position = re.search(r'"position">(\d+)<', page.text)
            if position is None:  # the session is complete
                return
            done = int(position.group(1)) - 1


async def run(base: str, raters: int, answers: int, think_ms: float, stats: Stats, on_half) -> float:
    progress = asyncio.Event()
    t0 = time.perf_counter()
    tasks = [
        asyncio.create_task(rater(base, i, answers, stats, progress, raters * answers, think_ms))
        for i in range(raters)
    ]
    if on_half is not None:
        await progress.wait()
        await asyncio.to_thread(on_half)
    await asyncio.gather(*tasks)
    return time.perf_counter() - t0


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--answers", type=int, default=40, help="answers per rater (also the session length)")
    parser.add_argument(
        "--think-ms", type=float, default=0, help="mean time a rater looks at an image (default 0)"
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--kill-restart", action="store_true", help="SIGKILL and restart the server halfway")
    parser.add_argument(
        "--time-limit", type=float, default=300, help="seconds before giving up (default 300)"
    )
    parser.add_argument("--write", action="store_true", help="write the result into BENCHMARKS.md")
    args = parser.parse_args()
    if not (1 <= args.raters <= 200 and 2 <= args.answers <= 200):
        parser.error("keep it bounded: 1..200 raters, 2..200 answers")
    stats = Stats()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "study.sqlite"
        sources = make_study(Path(tmp))
        server = [start_server(db, args.port, args.answers, sources)]
        kills = []

        def kill_and_restart() -> None:
            server[0].send_signal(signal.SIGKILL)
            server[0].wait()
            kills.append(time.perf_counter())
            server[0] = start_server(db, args.port, args.answers, [])
            kills.append(time.perf_counter())

        try:
            wall = asyncio.run(
                asyncio.wait_for(
                    run(
                        f"http://127.0.0.1:{args.port}",
                        args.raters,
                        args.answers,
                        args.think_ms,
                        stats,
                        kill_and_restart if args.kill_restart else None,
                    ),
                    args.time_limit,
                )
            )
        finally:
            server[0].send_signal(signal.SIGINT)
            try:
                server[0].wait(timeout=10)
            except subprocess.TimeoutExpired:
                server[0].kill()
        conn = sqlite3.connect(db)
        stored = {
            t for (t,) in conn.execute("SELECT t.token FROM answers a JOIN trials t ON t.id = a.trial_id")
        }
        per_session = conn.execute("SELECT COUNT(*) FROM answers GROUP BY session_id").fetchall()
        conn.close()
    expected = args.raters * args.answers
    lost = len(stats.acknowledged - stored)
    errors = sum(v for k, v in stats.errors.items() if "HTTP" in k)
    body = render(args, stats, wall, expected, len(stored), lost, errors, per_session, kills)
    print(body)
    if args.write:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from _report import write_section

        write_section(
            "turing_load" + ("_kill" if args.kill_restart else "") + ("_think" if args.think_ms else ""), body
        )
    return 0 if lost == 0 and len(stored) == expected else 1


def render(
    args, stats: Stats, wall: float, expected: int, stored: int, lost: int, errors: int, per_session, kills
) -> str:
    import platform

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _report import commit

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    flag = (" --kill-restart" if args.kill_restart else "") + (
        f" --think-ms {args.think_ms:g}" if args.think_ms else ""
    )
    title = "killed (SIGKILL) and restarted halfway" if args.kill_restart else "steady"
    title += f", raters look {args.think_ms:g} ms per image" if args.think_ms else ", no think time"
    lines = [
        f"## Visual Turing test server under load ({title})",
        "",
        f"- command: `PYTHONPATH=src python benchmarks/turing_load.py --raters {args.raters} "
        f"--answers {args.answers}{flag}`",
        f"- commit: `{commit()}`; machine: {cpu}, {os.cpu_count()} cores, CPU only, shared with other jobs; "
        f"client and server on the same machine (127.0.0.1); Python {platform.python_version()}",
        f"- {args.raters} concurrent raters × {args.answers} answers = {expected}; stored {stored} "
        f"(sessions complete: {sum(1 for (n,) in per_session if n == args.answers)}/{args.raters}); "
        f"**answers lost: {lost}**; HTTP errors: {errors}; connection failures (retried): "
        f"{sum(stats.errors.values()) - errors}"
        + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(stats.errors.items()))})" if stats.errors else ""),
        "",
        "| request | count | p50 [ms] | p95 [ms] | max [ms] |",
        "|---|---|---|---|---|",
    ]
    for name, values in (("POST /answer", stats.answer_ms), ("GET /img/…", stats.image_ms)):
        lines.append(
            f"| {name} | {len(values)} | {percentile(values, 50):.1f} | {percentile(values, 95):.1f} | "
            f"{max(values, default=float('nan')):.1f} |"
        )
    lines += ["", f"Wall time {wall:.1f} s, {stored / wall:.0f} answers/s."]
    if kills:
        lines.append(
            f"Server down for {kills[1] - kills[0]:.1f} s (restart includes the CLI's start-up); the raters "
            f"retried {stats.retried} requests; an answer whose reply was lost shows up as the next image."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
