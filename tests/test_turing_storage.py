"""Storage of the visual Turing test: one committed row per answer, balanced sessions, restart safety."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from turing_support import LiveServer, Rater, db_rows, make_study

from improved_gan.evaluation.study_db import StudyDB

SRC = Path(__file__).resolve().parent.parent / "src"


def test_sessions_are_balanced_half_real_and_spread_over_models(tmp_path):
    db = StudyDB(make_study(tmp_path, n=30, models=3))
    for n_total in (12, 13):
        for _ in range(5):
            _, session = db.new_session("", "", False, n_total)
            rows = (
                db.connection()
                .execute(
                    "SELECT i.source, i.id FROM trials t JOIN images i ON i.id = t.image_id WHERE t.session_id = ?",
                    (session.id,),
                )
                .fetchall()
            )
            counts = Counter(source for source, _ in rows)
            assert len(rows) == n_total and len({i for _, i in rows}) == n_total  # no repeats
            assert counts["real"] in (n_total // 2, (n_total + 1) // 2)
            fakes = [counts[f"model{m}"] for m in range(3)]
            assert max(fakes) - min(fakes) <= 1
    assert db.connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_each_answer_is_one_row_with_rater_truth_model_and_latency(tmp_path):
    db_path = make_study(tmp_path, n=10)
    with LiveServer(db_path, per_rater=4) as server:
        rater = Rater(server.url, name="Ada", worker_id="W1")
        rater.start()
        rater.page()
        for answer in ("real", "fake", "fake", "real"):
            assert rater.rate(answer).status_code == 200
        rater.close()
    rows = db_rows(
        db_path,
        "SELECT rater_name, worker_id, truth, answer, correct, model, latency_ms, answered_at,"
        " position FROM answers ORDER BY position",
    )
    assert [r[3] for r in rows] == ["real", "fake", "fake", "real"]
    for name, worker, truth, answer, correct, model, latency, when, _ in rows:
        assert (name, worker) == ("Ada", "W1")
        assert correct == int(truth == answer)
        assert (model == "real") == (truth == "real") and model in ("real", "model0", "model1")
        assert latency >= 0 and abs(when - time.time()) < 60
    assert db_rows(db_path, "SELECT completed_at IS NOT NULL FROM sessions") == [(1,)]


def test_a_restarted_app_continues_the_same_session(tmp_path):
    db_path = make_study(tmp_path, n=10)
    with LiveServer(db_path, per_rater=6) as server:
        rater = Rater(server.url)
        rater.start()
        rater.page()
        for _ in range(3):
            assert rater.rate().status_code == 200
        cookies = dict(rater.client.cookies)
    with LiveServer(db_path, per_rater=6) as server:
        rater = Rater(server.url)
        rater.client.cookies.update(cookies)
        assert '<span id="position">4</span>' in rater.page().text
        for _ in range(3):
            assert rater.rate().status_code == 200
        assert "Thank you" in rater.client.get("/done").text
    assert db_rows(db_path, "SELECT COUNT(*), COUNT(DISTINCT position) FROM answers") == [(6, 6)]


def test_concurrent_duplicates_store_one_answer(tmp_path):
    db_path = make_study(tmp_path, n=10)
    with LiveServer(db_path, per_rater=4) as server:
        rater = Rater(server.url)
        rater.start()
        rater.page()
        rater.image()
        trial, statuses = rater.trial, []
        barrier = threading.Barrier(8)

        def post() -> None:
            with httpx.Client(base_url=server.url, cookies=rater.client.cookies) as client:
                barrier.wait()
                statuses.append(
                    client.post(
                        "/answer",
                        data={"csrf": rater.csrf, "trial": trial, "answer": "real"},
                        headers={"accept": "application/json"},
                    ).status_code
                )

        threads = [threading.Thread(target=post) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(statuses) == [200] + [409] * 7
    assert db_rows(db_path, "SELECT COUNT(*) FROM answers") == [(1,)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(db_path: Path, port: int, *sources: str) -> subprocess.Popen:
    """``improved-gan turing serve`` in a subprocess; without sources, ``serve()`` itself (no torch
    import by the other commands: faster)."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    if sources:
        command = [
            "-m",
            "improved_gan",
            "turing",
            "serve",
            "--db",
            str(db_path),
            "--port",
            str(port),
            "--per-rater",
            "8",
            *sources,
        ]
    else:
        command = [
            "-c",
            f"from improved_gan.evaluation import serve; serve({str(db_path)!r}, port={port}, per_rater=8)",
        ]
    proc = subprocess.Popen(
        [sys.executable, *command], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
        if proc.poll() is not None:
            raise RuntimeError(proc.stdout.read())
    proc.kill()
    raise RuntimeError("server did not start")


def test_answers_survive_the_server_being_killed(tmp_path):
    """`turing serve` killed with SIGKILL loses no acknowledged answer, and raters resume after restart."""
    db_path = make_study(tmp_path, n=10)
    port = _free_port()
    proc = _start_server(
        db_path,
        port,
        "--real",
        str(tmp_path / "real.npz"),
        "--fake",
        str(tmp_path / "model0.npz"),
        "--fake",
        str(tmp_path / "model1.npz"),
        "--images",
        "10",
    )
    try:
        raters = [Rater(f"http://127.0.0.1:{port}", name=f"r{i}") for i in range(3)]
        for rater in raters:
            rater.start()
            rater.page()
            for _ in range(5):
                assert rater.rate().status_code == 200
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        output = proc.stdout.read()
    assert "127.0.0.1" in output and "/admin?token=" in output
    assert db_rows(db_path, "SELECT COUNT(*) FROM answers") == [(15,)]

    proc = _start_server(db_path, port)  # the same database, no sources: the study continues
    try:
        for rater in raters:
            assert '<span id="position">6</span>' in rater.page().text
            for _ in range(3):
                assert rater.rate().status_code == 200
            assert "completion code" in rater.client.get("/done").text
            rater.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    assert db_rows(db_path, "SELECT COUNT(*), COUNT(DISTINCT session_id) FROM answers") == [(24, 3)]
    admin_link = re.compile(r"/admin\?token=\S+")
    assert admin_link.findall(proc.stdout.read()) == admin_link.findall(output)  # the same admin link
