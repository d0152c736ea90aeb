"""Security of the visual Turing test: no trace of the truth before the answer, no path to the file
system, forged and duplicate answers refused, cross-site POSTs refused, admin behind its token."""

from __future__ import annotations

import argparse
import http.client
import io
import re

import pytest
from PIL import Image
from test_turing_sources import png_chunks
from turing_support import CSRF, LiveServer, Rater, db_rows, make_study

from improved_gan.cli import turing as commands
from improved_gan.errors import ImprovedGANError
from improved_gan.evaluation import create_app


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("study"), n=30)


@pytest.fixture(scope="module")
def server(study):
    with LiveServer(study, per_rater=20) as live:
        yield live


def started(server, **kw) -> Rater:
    rater = Rater(server.url, **kw)
    assert rater.start().status_code == 200
    rater.page()
    return rater


def truth_of(study, token: str) -> str:
    rows = db_rows(
        study, "SELECT i.is_real FROM trials t JOIN images i ON i.id = t.image_id WHERE t.token = ?", (token,)
    )
    return "real" if rows[0][0] else "fake"


def test_pages_and_image_urls_carry_no_trace_of_the_truth(study, server):
    """Without feedback, every rating page is the same but for the trial token and the count; the
    image URL is a fresh random token; the image bytes are one PNG format with no metadata."""
    rater = started(server)
    pages, truths, headers = {}, [], []
    for position in range(20):
        page = rater.page()
        token = rater.trial
        assert re.fullmatch(r"[A-Za-z0-9_-]{32}", token)
        truth = truth_of(study, token)
        truths.append(truth)
        skeleton = page.text.replace(token, "TOKEN").replace(f'"position">{position + 1}<', '"position">N<')
        pages.setdefault(skeleton, []).append(truth)
        for leak in ("real.npz", "model0", "model1", "source", "truth"):
            assert leak not in page.text
        image = rater.image()
        headers.append({k: v for k, v in image.headers.items() if k not in ("date", "content-length")})
        png = Image.open(io.BytesIO(image.content))
        assert (png.format, png.mode, png.size) == ("PNG", "L", (28, 28))
        assert png_chunks(image.content) == ["IHDR", "IDAT", "IEND"] and not png.info
        response = rater.answer("real")
        assert "feedback" not in response.json() and "truth" not in response.text
    assert len(pages) == 1 and sorted(set(truths)) == ["fake", "real"]  # one page for both truths
    assert all(h == headers[0] for h in headers) and "content-disposition" not in headers[0]
    assert headers[0]["cache-control"] == "no-store, private"


def test_the_same_image_gets_a_different_url_in_every_session(study, server):
    for _ in range(3):
        started(server)
    rows = db_rows(study, "SELECT image_id, token FROM trials")
    tokens_by_image: dict[int, list[str]] = {}
    for image_id, token in rows:
        tokens_by_image.setdefault(image_id, []).append(token)
    assert max(len(t) for t in tokens_by_image.values()) >= 2  # images recur across sessions...
    assert len({token for _, token in rows}) == len(rows)  # ...under different URLs


@pytest.mark.parametrize(
    "path",
    [
        "/img/../../../../etc/passwd",
        "/img/..%2f..%2fstudy.sqlite",
        "/img/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/static/../turing_app.py",
        "/static/..%2fturing_app.py",
        "/static/%2e%2e/study_db.py",
        "/static/../../../../etc/passwd",
        "/static/turing.css/../../turing_app.py",
        "/static//etc/passwd",
        "/img/real.npz",
        "/study.sqlite",
        "/real.npz",
        "/templates/rate.html",
        "/static/",
        "/img/",
    ],
)
def test_path_traversal_is_refused(server, path):
    """Raw request paths (not normalised by a client) never reach a file."""
    rater = started(server)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    cookie = "; ".join(f"{k}={v}" for k, v in rater.client.cookies.items())
    conn.putrequest("GET", path, skip_accept_encoding=True)
    conn.putheader("Cookie", cookie)
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 404
    assert b"root:" not in body and b"import" not in body and b"SQLite" not in body and b"PNG" not in body


def test_forged_and_duplicate_answers_are_refused(study, server):
    ann, bob = started(server), started(server)
    count = db_rows(study, "SELECT COUNT(*) FROM answers")[0][0]
    future = db_rows(
        study,
        "SELECT t.token FROM trials t JOIN sessions s ON s.id = t.session_id"
        " WHERE t.position = 1 ORDER BY s.id DESC LIMIT 1",
    )[0][0]  # bob's second image
    assert ann.answer("real").status_code == 409  # never shown: the image was not fetched
    assert bob.image(future).status_code == 404  # a future image cannot be fetched
    assert ann.image(bob.trial).status_code == 404  # nor another session's
    ann.image()
    assert ann.answer("real", trial=bob.trial).status_code == 404  # another session's image
    assert ann.answer("real", trial="A" * 32).status_code == 404  # an unknown image
    assert ann.answer("real", trial="../../etc/passwd").status_code == 404
    assert ann.answer("maybe").status_code == 400
    bob.image()
    assert bob.answer("real", trial=future).status_code == 409  # not the current image
    first = ann.trial
    assert ann.answer("fake").status_code == 200
    duplicate = ann.answer("real", trial=first)
    assert duplicate.status_code == 409 and "already answered" in duplicate.json()["error"]
    rows = db_rows(
        study, "SELECT answer FROM answers a JOIN trials t ON t.id = a.trial_id WHERE t.token = ?", (first,)
    )
    assert rows == [("fake",)]
    assert db_rows(study, "SELECT COUNT(*) FROM answers")[0][0] == count + 1


def test_cross_site_posts_are_refused(study, server):
    rater = started(server)
    rater.image()
    count = db_rows(study, "SELECT COUNT(*) FROM answers")[0][0]
    post = rater.client.post
    form = {"trial": rater.trial, "answer": "real"}
    json = {"accept": "application/json"}
    assert post("/answer", data=form, headers=json).status_code == 403  # no token
    assert post("/answer", data={**form, "csrf": "x" * 43}, headers=json).status_code == 403  # wrong token
    ok = {**form, "csrf": rater.csrf}
    assert post("/answer", data=ok, headers={**json, "origin": "http://evil.example"}).status_code == 403
    assert post("/answer", data=ok, headers={**json, "sec-fetch-site": "cross-site"}).status_code == 403
    assert post("/answer", json=ok, headers=json).status_code == 415  # only forms
    assert post("/answer", data={**ok, "pad": "x" * 5000}, headers=json).status_code == 413
    anonymous = Rater(server.url)
    assert anonymous.client.post("/answer", data=ok, headers=json).status_code == 401  # no session
    assert db_rows(study, "SELECT COUNT(*) FROM answers")[0][0] == count
    assert post("/answer", data=ok, headers={**json, "origin": server.url}).status_code == 200
    # the start form: double-submit token and same origin
    newcomer = Rater(server.url)
    token = CSRF.search(newcomer.client.get("/").text).group(1)
    assert newcomer.client.post("/start", data={"csrf": "y" * 32}).status_code == 403
    assert (
        newcomer.client.post(
            "/start", data={"csrf": token}, headers={"origin": "http://evil.example"}
        ).status_code
        == 403
    )
    assert Rater(server.url).client.post("/start", data={"csrf": token}).status_code == 403  # no cookie
    assert newcomer.client.post("/start", data={"csrf": token}).status_code == 303


def test_cookies_and_headers_are_strict(server):
    rater = Rater(server.url)
    start = rater.client.get("/")
    assert (
        "httponly" in start.headers["set-cookie"].lower()
        and "samesite=strict" in start.headers["set-cookie"].lower()
    )
    token = CSRF.search(start.text).group(1)
    response = rater.client.post("/start", data={"csrf": token})
    cookie = response.headers["set-cookie"].lower()
    assert "turing_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    page = rater.client.get("/rate")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text and not re.search(r"\son[a-z]+=", page.text)  # no inline script


def test_admin_page_needs_the_token(study, server):
    client = Rater(server.url).client
    assert client.get("/admin").status_code == 403
    assert client.get("/admin/answers.csv").status_code == 403
    assert client.get("/admin", params={"token": "wrong"}).status_code == 403
    page = client.get("/admin", params={"token": server.admin_token}, follow_redirects=True)
    answers = db_rows(study, "SELECT COUNT(*) FROM answers")[0][0]
    assert page.status_code == 200 and str(page.url).endswith("/admin")  # the token leaves the URL
    assert f"{answers} answers" in page.text
    csv = client.get("/admin/answers.csv")
    assert csv.status_code == 200 and len(csv.text.strip().splitlines()) == answers + 1


def test_the_done_page_shows_the_mistakes_only_once_every_image_is_answered(tmp_path):
    db_path = make_study(tmp_path, n=10)
    with LiveServer(db_path, per_rater=4, feedback="on", feedback_delay_ms=0) as server:
        rater = started(server)
        tokens = []
        for _ in range(4):
            assert rater.client.get("/done", follow_redirects=False).status_code == 303  # not yet
            tokens.append(rater.trial)
            assert rater.rate("real").status_code == 200
        page = rater.client.get("/done")
        wrong = [t for t in tokens if truth_of(db_path, t) == "fake"]
        shown = re.findall(r'<img src="/img/([^"]+)"', page.text)
        assert shown == wrong and page.text.count("You said real; it was generated.") == len(wrong)
        assert all(rater.image(t).status_code == 200 for t in shown)
        rater.close()
        other = started(server)  # another rater sees nothing of it
        assert not set(re.findall(r"/img/([\w-]+)", other.page().text)) & set(tokens)
        assert all(other.image(t).status_code == 404 for t in tokens)
        other.close()


def test_the_done_page_of_the_no_feedback_condition_tells_no_truth(tmp_path):
    db_path = make_study(tmp_path, n=10)
    with LiveServer(db_path, per_rater=4, feedback="off") as server:
        rater = started(server)
        for _ in range(4):
            assert rater.rate("real").status_code == 200
        page = rater.client.get("/done")
        assert page.status_code == 200 and "completion-code" in page.text
        assert "/img/" not in page.text and "wrong" not in page.text and "right" not in page.text
        rater.close()


def admin_token_of(app) -> str:
    app.state.study.close()
    return app.state.admin_token


def test_the_admin_token_survives_a_restart_and_rotating_it_refuses_the_old_one(tmp_path):
    db_path = make_study(tmp_path, n=10)
    first, again = (admin_token_of(create_app(db_path, per_rater=4)) for _ in range(2))
    assert first == again  # two servers on the same database: one admin link
    with LiveServer(db_path, per_rater=4, new_admin_token=True) as server:
        assert server.admin_token != first
        client = Rater(server.url).client
        assert client.get("/admin", params={"token": first}).status_code == 403
        page = client.get("/admin", params={"token": server.admin_token}, follow_redirects=True)
        assert page.status_code == 200
    assert admin_token_of(create_app(db_path, per_rater=4)) == server.admin_token
    with pytest.raises(ImprovedGANError, match="contradict"):
        create_app(db_path, per_rater=4, admin_token="x" * 20, new_admin_token=True)


def test_the_server_listens_on_localhost_by_default():
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers())
    args = parser.parse_args(["turing", "serve", "--real", "mnist", "--fake", "run"])
    assert args.host == "127.0.0.1" and args.feedback == "off"
    assert parser.parse_args(["turing", "serve", "--feedback"]).feedback == "on"


def test_behind_a_proxy_the_public_origin_is_the_one_accepted(tmp_path):
    with LiveServer(make_study(tmp_path, n=10), per_rater=4, origins=["https://study.example.org"]) as server:
        rater = Rater(server.url)
        page = rater.client.get("/")
        form = {"csrf": CSRF.search(page.text).group(1)}
        assert rater.client.post("/start", data=form, headers={"origin": server.url}).status_code == 403
        assert (
            rater.client.post(
                "/start", data=form, headers={"origin": "https://study.example.org"}
            ).status_code
            == 303
        )
