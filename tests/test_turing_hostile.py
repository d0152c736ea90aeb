"""Hostile inputs to the visual Turing test (Salimans et al. 2016, section 4): feedback sessions that
counting cannot beat, formula and markup injection through rater fields, a giveaway pixel, foreign
databases, bad ports, reports over earlier ones and decompression bombs."""

from __future__ import annotations

import csv
import hashlib
import random
import socket
import sqlite3
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from turing_support import LiveServer, Rater, db_rows, make_study

from improved_gan.cli import main
from improved_gan.evaluation import turing_app
from improved_gan.evaluation.giveaway import find_giveaway
from improved_gan.evaluation.report import csv_safe, md_escape, write_report
from improved_gan.evaluation.study_db import StudyDB
from improved_gan.evaluation.trial_plan import BALANCED, DRAWS, INDEPENDENT, plan_trials


@pytest.fixture
def no_server(monkeypatch):
    """``turing serve`` up to the point where it would serve: a free port of 127.0.0.1 instead of
    the one asked for (no fixed port is bound), and no uvicorn."""

    def any_free_port(host: str, port: int) -> socket.socket:
        if not 1 <= port <= 65535:
            return real_listen(host, port)  # its refusal
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        return sock

    real_listen = turing_app.listen_socket
    monkeypatch.setattr(turing_app, "listen_socket", any_free_port)
    monkeypatch.setattr(turing_app, "run_server", lambda app, sock: None)


def npz(path: Path, images: np.ndarray) -> str:
    np.savez(path, images=images)
    return str(path)


# -- (b) feedback sessions: each image real or generated independently ---------------------------
def session_plans(
    db: StudyDB, feedback: bool, sessions: int, n_total: int
) -> list[tuple[int, str, list[bool]]]:
    out = []
    for _ in range(sessions):
        _, session = db.new_session("", "", feedback, n_total)
        (seed, draw), *_ = db_rows(db.path, "SELECT seed, draw FROM sessions WHERE id = ?", (session.id,))
        rows = db_rows(
            db.path,
            "SELECT i.is_real FROM trials t JOIN images i ON i.id = t.image_id WHERE t.session_id = ?"
            " ORDER BY t.position",
            (session.id,),
        )
        out.append((seed, draw, [bool(r[0]) for r in rows]))
    return out


def test_feedback_sessions_draw_each_image_independently_and_reproducibly(tmp_path):
    db = StudyDB(make_study(tmp_path, n=30, models=2))
    try:
        plans = session_plans(db, True, 300, 20)
        balanced = session_plans(db, False, 50, 20)
        pools: dict[str, list[int]] = {}
        for source, image_id in db_rows(db.path, "SELECT source, id FROM images ORDER BY id"):
            pools.setdefault(source, []).append(image_id)
        last = db_rows(
            db.path,
            "SELECT t.image_id FROM trials t WHERE t.session_id = (SELECT MAX(id) FROM sessions WHERE feedback = 1)"
            " ORDER BY t.position",
        )
        (last_seed,), *_ = db_rows(db.path, "SELECT seed FROM sessions WHERE feedback = 1 ORDER BY id DESC")
    finally:
        db.close()
    assert {draw for _, draw, _ in plans} == {INDEPENDENT} and {d for _, d, _ in balanced} == {BALANCED}
    counts = np.array([sum(p) for _, _, p in plans])
    assert all(sum(p) == 10 for _, _, p in balanced)  # without feedback: exactly half, as in the paper
    # Binomial(20, 1/2): mean 10, variance 5; the counts vary from session to session.
    assert len(set(counts.tolist())) >= 6
    assert 9.5 < counts.mean() < 10.5 and 3.5 < counts.var() < 6.5
    # Every position is real half the time: nothing about the order gives the answer either.
    by_position = np.array([p for _, _, p in plans]).mean(axis=0)
    assert by_position.min() > 0.35 and by_position.max() < 0.65
    # The plan is reproducible from the session's stored seed.
    again = plan_trials(random.Random(last_seed), pools, "real", 20, INDEPENDENT)
    assert again == [r[0] for r in last]
    same = [plan_trials(random.Random(7), pools, "real", 20, INDEPENDENT) for _ in range(2)]
    assert same[0] == same[1] != plan_trials(random.Random(8), pools, "real", 20, INDEPENDENT)
    assert len(set(same[0])) == 20  # no image twice in a session


def test_a_feedback_study_needs_a_real_image_for_every_trial(tmp_path):
    from improved_gan.errors import ImprovedGANError

    db_path = make_study(tmp_path, n=12, models=1)
    assert turing_app.create_app(db_path, feedback="off", per_rater=20)  # balanced: 10 + 10 fit
    with pytest.raises(ImprovedGANError, match="drawn real or generated independently"):
        turing_app.create_app(db_path, feedback="on", per_rater=20)


# -- (c) injection through the rater's name and worker id ------------------------------------------
@pytest.mark.hostile
def test_csv_cells_and_markdown_cannot_carry_formulas_or_markup(tmp_path):
    db_path = make_study(tmp_path, n=10, models=1)
    name, worker = "<script>alert(1)</script> **bold** | x", '=HYPERLINK("http://evil.example","ok")'
    with LiveServer(db_path, per_rater=4, feedback="on", feedback_delay_ms=0) as server:
        rater = Rater(server.url, name=name, worker_id=worker)
        assert rater.start().status_code == 200
        rater.page()
        for _ in range(4):
            assert rater.rate("fake").status_code == 200
        rater.close()
    files = write_report(db_path, tmp_path / "report")
    text = files.markdown.read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "\\*\\*bold\\*\\*" in text and "\\| x" in text
    assert DRAWS[INDEPENDENT] in text  # the report says how the trials were drawn
    with files.csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    assert {r["worker_id"] for r in rows} == {"'" + worker}
    assert {r["rater_name"] for r in rows} == {name}  # '<' is harmless in a spreadsheet


@pytest.mark.hostile
@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1+cmd", "@SUM(A1)", "\tx", "\rx"])
def test_csv_safe_defuses_each_formula_prefix(cell):
    assert csv_safe(cell) == "'" + cell


def test_csv_safe_leaves_plain_cells_and_numbers_alone():
    assert csv_safe("alice") == "alice" and csv_safe(-3) == -3 and csv_safe(1.5) == 1.5 and csv_safe("") == ""


def test_md_escape_leaves_no_raw_tag_or_table_break():
    out = md_escape("<img src=x onerror=alert(1)>|[a](javascript:x)\nnext")
    assert "<" not in out and "|" not in out.replace("\\|", "") and "\n" not in out
    assert "\\[a\\]\\(javascript:x\\)" in out


# -- (d) a giveaway pixel -------------------------------------------------------------------------
def stuck_pixel_sets(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    real = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    fake = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    fake[:, 22, 5] = 255
    return real, fake


def test_find_giveaway_names_a_stuck_pixel_and_stays_quiet_on_a_clean_set():
    real, fake = stuck_pixel_sets()
    line = find_giveaway(real, fake, "stuck")
    assert line is not None and "pixel (22, 5) is above" in line and "100.0 % of generated" in line
    clean = np.random.default_rng(4).integers(0, 256, fake.shape, dtype=np.uint8)
    assert find_giveaway(real, clean, "clean") is None


def test_find_giveaway_ignores_a_background_too_faint_to_see():
    """Real backgrounds exactly 0, generated ones 1–3 of 255 (a sigmoid's floor): a program
    separates them perfectly, a rater cannot, so no warning; at 40 levels it is a giveaway."""
    rng = np.random.default_rng(7)
    digits = np.where(rng.random((2, 60, 28, 28)) < 0.2, rng.integers(100, 256, (2, 60, 28, 28)), 0)
    real = digits[0].astype(np.uint8)
    faint = np.where(digits[1] == 0, rng.integers(1, 4, digits[1].shape), digits[1]).astype(np.uint8)
    assert find_giveaway(real, faint, "faint") is None
    seen = np.where(digits[1] == 0, 40, digits[1]).astype(np.uint8)
    assert find_giveaway(real, seen, "seen") is not None


def test_find_giveaway_catches_a_brighter_background_with_the_logistic_regression():
    rng = np.random.default_rng(5)
    real = rng.integers(0, 200, (60, 12, 12), dtype=np.uint8)
    fake = np.clip(rng.integers(0, 200, (60, 12, 12)) + 40, 0, 255).astype(np.uint8)
    line = find_giveaway(real, fake, "bright")
    assert line is not None and "bright" in line


@pytest.mark.hostile
def test_serve_warns_about_a_giveaway_pixel(tmp_path, capsys, no_server):
    real, fake = stuck_pixel_sets()
    argv = ["turing", "serve", "--db", str(tmp_path / "s.sqlite"), "--real", npz(tmp_path / "r.npz", real)]
    assert main([*argv, "--fake", "stuck=" + npz(tmp_path / "f.npz", fake), "--per-rater", "10"]) == 0
    out = capsys.readouterr()
    (warning,) = [line for line in out.err.splitlines() if line.startswith("warning:")]
    assert "'stuck'" in warning and "pixel (22, 5)" in warning and "raters:" in out.out


def test_serve_is_quiet_about_a_clean_set(tmp_path, capsys, no_server):
    real, _ = stuck_pixel_sets()
    clean = np.random.default_rng(6).integers(0, 256, real.shape, dtype=np.uint8)
    argv = ["turing", "serve", "--db", str(tmp_path / "s.sqlite"), "--real", npz(tmp_path / "r.npz", real)]
    assert main([*argv, "--fake", "clean=" + npz(tmp_path / "f.npz", clean), "--per-rater", "10"]) == 0
    assert "warning" not in capsys.readouterr().err


# -- foreign databases, ports, report folders, bombs ------------------------------------------------
def foreign_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices VALUES (1, 9.5);"
    )
    conn.close()
    return path


def fingerprint(path: Path) -> tuple:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()
    return tables, journal, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.hostile
def test_serve_refuses_a_database_that_is_not_a_study_and_leaves_it_untouched(tmp_path, capsys, no_server):
    db = foreign_db(tmp_path / "accounts.sqlite")
    before = fingerprint(db)
    assert before[1] == "delete"
    real, _ = stuck_pixel_sets()
    r, f = npz(tmp_path / "r.npz", real), npz(tmp_path / "f.npz", real[::-1])
    message = cli_error(capsys, ["turing", "serve", "--db", str(db), "--real", r, "--fake", f])
    assert "not a study database" in message and "--db" in message
    assert cli_error(capsys, ["turing", "serve", "--db", str(db)]).startswith(f"{db}: not a study database")
    assert "not a study database" in cli_error(capsys, ["turing", "report", str(db)])
    assert fingerprint(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "accounts.sqlite",
        "f.npz",
        "r.npz",
    ]  # no -wal, no report


@pytest.mark.hostile
@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_serve_refuses_a_port_out_of_range_before_printing_links(tmp_path, capsys, port):
    db = make_study(tmp_path, n=10, models=1)
    message = cli_error(capsys, ["turing", "serve", "--db", str(db), "--port", port])
    assert "--port" in message and "65535" in message


@pytest.mark.hostile
def test_serve_refuses_a_busy_port_before_printing_links(tmp_path, capsys):
    db_path = tmp_path / "new.sqlite"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        real, _ = stuck_pixel_sets(10)
        r, f = npz(tmp_path / "r.npz", real), npz(tmp_path / "f.npz", real[::-1])
        argv = ["turing", "serve", "--db", str(db_path), "--real", r, "--fake", f, "--port", str(port)]
        capsys.readouterr()
        message = cli_error(capsys, argv)
    assert f"port {port}" in message and "in use" in message and "--port" in message
    assert not db_path.exists()  # refused before the study was made


def cli_error(capsys, argv: list[str]) -> str:
    """conftest's ``cli_error`` (exit status 1, one ``improved-gan: error:`` line on stderr, no
    traceback), and nothing on stdout: no links or report were printed before the refusal."""
    capsys.readouterr()
    rc = main(argv)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip() and not line.startswith("warning:")]
    assert rc == 1, f"exit status {rc}, stderr: {captured.err!r}"
    assert len(lines) == 1 and lines[0].startswith("improved-gan: error: "), captured.err
    assert "Traceback" not in captured.err and "internal error" not in captured.err, captured.err
    assert captured.out == "", captured.out
    return lines[0].removeprefix("improved-gan: error: ")


@pytest.mark.hostile
def test_report_refuses_to_overwrite_an_earlier_report_unless_forced(tmp_path, capsys):
    db = make_study(tmp_path, n=10, models=1)
    out = tmp_path / "out"
    assert main(["turing", "report", str(db), "--out", str(out)]) == 0
    before = (out / "report.md").read_bytes()
    message = cli_error(capsys, ["turing", "report", str(db), "--out", str(out)])
    assert "exists" in message and "--force" in message
    assert (out / "report.md").read_bytes() == before
    assert main(["turing", "report", str(db), "--out", str(out), "--force"]) == 0


@pytest.mark.hostile
def test_report_refuses_an_out_that_is_a_file_even_with_force(tmp_path, capsys):
    db = make_study(tmp_path, n=10, models=1)
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    for extra in ([], ["--force"]):
        message = cli_error(capsys, ["turing", "report", str(db), "--out", str(target), *extra])
        assert "is a file" in message
    assert target.read_text() == "keep me"


def bomb_png(path: Path, side: int = 100_000) -> Path:
    """A PNG that declares side² pixels in a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * 4096, 9)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.hostile
@pytest.mark.parametrize("where", ["real", "fake"])
def test_a_decompression_bomb_among_the_images_is_refused(tmp_path, capsys, where, no_server):
    folders = {k: tmp_path / k for k in ("real", "fake")}
    rng = np.random.default_rng(0)
    for folder in folders.values():
        folder.mkdir()
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(folder / f"{i}.png")
    bomb_png(folders[where] / "zz.png")
    db_path = tmp_path / "s.sqlite"
    argv = [
        "turing",
        "serve",
        "--db",
        str(db_path),
        "--real",
        str(folders["real"]),
        "--fake",
        str(folders["fake"]),
    ]
    message = cli_error(capsys, argv)
    assert "zz.png" in message and "pixels" in message
    assert not db_path.exists()
