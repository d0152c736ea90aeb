"""Helpers of the visual Turing test tests: tiny studies, a live server on 127.0.0.1, a scripted rater."""

from __future__ import annotations

import re
import socket
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import uvicorn

from improved_gan.evaluation import create_app, prepare_study

TRIAL = re.compile(r'name="trial" id="trial" value="([^"]+)"')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def make_study(tmp_path: Path, n: int = 30, models: int = 2, size: int = 28, scores: bool = False) -> Path:
    """A study database: ``n`` random real images (npz) and ``n`` per model; returns its path."""
    rng = np.random.default_rng(0)
    real = tmp_path / "real.npz"
    np.savez(real, images=rng.integers(0, 256, (n, size, size), dtype=np.uint8))
    fakes = []
    for m in range(models):
        path = tmp_path / f"model{m}.npz"
        extra = {"scores": rng.random(n)} if scores else {}
        np.savez(path, images=rng.integers(0, 256, (n, size, size), dtype=np.uint8), **extra)
        fakes.append(str(path))
    db_path = tmp_path / "study.sqlite"
    prepare_study(db_path, str(real), fakes, images_per_source=n).close()
    return db_path


class LiveServer:
    """The app served by uvicorn in a thread, on a free port of 127.0.0.1."""

    def __init__(self, db_path: Path, **app_options) -> None:
        self.app = create_app(db_path, **app_options)
        # IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets (else 40 ms delayed-ACK stalls)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    @property
    def admin_token(self) -> str:
        return self.app.state.admin_token


class Rater:
    """A scripted rater speaking HTTP like the page's JavaScript does."""

    def __init__(self, base_url: str, name: str = "", worker_id: str = "") -> None:
        self.client = httpx.Client(base_url=base_url, timeout=10)
        self.name, self.worker_id = name, worker_id
        self.csrf = ""
        self.trial = ""

    def start(self) -> httpx.Response:
        page = self.client.get("/")
        csrf = CSRF.search(page.text).group(1)
        return self.client.post(
            "/start",
            data={"csrf": csrf, "name": self.name, "worker_id": self.worker_id},
            follow_redirects=True,
        )

    def page(self) -> httpx.Response:
        """The rating page; remembers its trial token and csrf token."""
        page = self.client.get("/rate")
        trial = TRIAL.search(page.text)
        if trial:
            self.trial, self.csrf = trial.group(1), CSRF.search(page.text).group(1)
        return page

    def image(self, trial: str | None = None) -> httpx.Response:
        return self.client.get(f"/img/{trial or self.trial}")

    def answer(self, answer: str, trial: str | None = None, **extra) -> httpx.Response:
        data = {"csrf": self.csrf, "trial": trial or self.trial, "answer": answer, **extra}
        response = self.client.post("/answer", data=data, headers={"accept": "application/json"})
        if response.status_code == 200 and "next" in response.json():
            self.trial = response.json()["next"]["trial"]
        return response

    def rate(self, answer: str = "real") -> httpx.Response:
        """Look at the current image, then answer it."""
        assert self.image().status_code == 200
        return self.answer(answer)

    def close(self) -> None:
        self.client.close()


def db_rows(db_path: Path, sql: str, args: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()
