"""The visual Turing test of Salimans et al. 2016 (section 4) as a web application (Starlette).

A rater opens ``/``, optionally gives a name or worker id, and rates ``per_rater`` images one at
a time ("Real or generated?", buttons or keys R/G, ←/→), half of them real. In the feedback
condition the page says after each answer whether it was right; once every image is answered,
the last page lists the rater's mistakes. ``/admin`` shows live results to
whoever holds the token printed at start-up; the token is kept in the study database, so a restart
prints the same link (``new_admin_token`` rotates it).

What keeps the answer out of the browser until the rater has answered: images are addressed by a
random per-session trial token; every image is re-encoded from its pixels to one uncompressed PNG
format of one length and served from memory (:func:`served_images`); feedback sessions draw each
image real or generated independently, so counting gives nothing away; the
rating page is the same template for real and generated images; and no request path maps to a
file (images come from the study database, the two static files from memory). POSTs carry a
per-session token and must come from the page's own origin. Answers are validated and committed
(:meth:`StudyDB.record_answer`) before the reply.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import io
import random
import secrets
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from improved_gan.errors import ImprovedGANError
from improved_gan.evaluation.giveaway import study_giveaways
from improved_gan.evaluation.image_sources import encode_png
from improved_gan.evaluation.report import write_csv_to
from improved_gan.evaluation.report_stats import report_from_db
from improved_gan.evaluation.study_db import AnswerRefused, Session, StudyDB
from improved_gan.evaluation.study_setup import prepare_study
from improved_gan.evaluation.trial_plan import INDEPENDENT, draw_for, images_needed
from improved_gan.evaluation.web import (
    ADMIN_COOKIE,
    FEEDBACK_MODES,
    SESSION_COOKIE,
    START_COOKIE,
    STATIC_FILES,
    TOKEN_PATTERN,
    Display,
    SecurityHeaders,
    check_admin_token,
    check_origins,
    clean_text,
    listen_socket,
    read_form,
    same_origin,
    tokens_equal,
    wants_json,
)
from improved_gan.evaluation.web import MAX_BODY as MAX_BODY
from improved_gan.evaluation.web import MAX_TEXT as MAX_TEXT
from improved_gan.evaluation.web import SECURITY_HEADERS as SECURITY_HEADERS


# -- the application -------------------------------------------------------------------------------
def create_app(
    db: StudyDB | str | Path,
    feedback: str = "off",
    per_rater: int = 40,
    admin_token: str | None = None,
    secure_cookies: bool = False,
    feedback_delay_ms: int = 900,
    origins: Sequence[str] = (),
    new_admin_token: bool = False,
) -> Starlette:
    """The rating web application over a study database that holds images (:func:`prepare_study`).

    ``feedback``: "on" (tell each rater after every answer whether it was right: the paper's
    feedback condition), "off", or "random" (each new rater is put in one condition at random).
    ``admin_token`` guards ``/admin`` (``app.state``); when not given, the one kept in the study
    database is used, made at random the first time; ``new_admin_token`` replaces it with a new one.
    ``origins``: public origins of the page when it is served through a proxy (see :func:`same_origin`).
    """
    if feedback not in FEEDBACK_MODES:
        raise ImprovedGANError(f"--feedback must be one of {FEEDBACK_MODES}, got {feedback!r}")
    study = db if isinstance(db, StudyDB) else StudyDB(db, create=False)
    if not study.has_images():
        raise ImprovedGANError(f"{study.path} holds no images; start the study with --real and --fake")
    if per_rater < 2:
        raise ImprovedGANError(f"--per-rater must be at least 2, got {per_rater}")
    check_admin_token(admin_token)
    _check_rotation(admin_token, new_admin_token)
    check_origins(origins)
    _check_pools(study, per_rater, feedback)
    served = served_images(study)
    admin_token = _stored_admin_token(study, admin_token, new_admin_token)
    display = Display.for_shape(study.image_shape())
    templates = jinja2.Environment(
        loader=jinja2.PackageLoader("improved_gan.evaluation", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    static_root = importlib.resources.files("improved_gan.evaluation") / "static"
    static = {name: (static_root / name).read_bytes() for name in STATIC_FILES}
    rng = random.SystemRandom()

    def page(name: str, status: int = 200, **context) -> HTMLResponse:
        return HTMLResponse(templates.get_template(name).render(**context), status_code=status)

    def error(request: Request, status: int, message: str) -> Response:
        if wants_json(request):
            return JSONResponse({"ok": False, "error": message}, status_code=status)
        return page("error.html", status, message=message)

    async def current_session(request: Request) -> Session | None:
        return await run_in_threadpool(study.session_by_token, request.cookies.get(SESSION_COOKIE))

    def set_cookie(response: Response, key: str, value: str, path: str = "/", samesite: str = "lax") -> None:
        response.set_cookie(
            key,
            value,
            max_age=30 * 24 * 3600,
            path=path,
            httponly=True,
            samesite=samesite,
            secure=secure_cookies,
        )

    async def start_page(request: Request) -> Response:
        session = await current_session(request)
        if session is not None:
            return RedirectResponse("/done" if session.done else "/rate", status_code=303)
        token = request.cookies.get(START_COOKIE)
        token = token if token and TOKEN_PATTERN.match(token) else secrets.token_urlsafe(24)
        q = request.query_params
        worker = clean_text(q.get("worker_id") or q.get("workerId") or q.get("PROLIFIC_PID"))
        response = page("start.html", csrf=token, per_rater=per_rater, worker_id=worker)
        set_cookie(response, START_COOKIE, token, samesite="strict")
        return response

    async def start(request: Request) -> Response:
        form = await read_form(request)
        if not same_origin(request, origins) or not tokens_equal(
            form.get("csrf"), request.cookies.get(START_COOKIE)
        ):
            return error(
                request, 403, "This form has expired or did not come from this site. Reload the page."
            )
        session = await current_session(request)
        if session is None:
            with_feedback = feedback == "on" or (feedback == "random" and rng.random() < 0.5)
            token, session = await run_in_threadpool(
                study.new_session,
                clean_text(form.get("name")),
                clean_text(form.get("worker_id")),
                with_feedback,
                per_rater,
            )
        else:
            token = request.cookies[SESSION_COOKIE]
        response = RedirectResponse("/rate", status_code=303)
        set_cookie(response, SESSION_COOKIE, token)
        response.delete_cookie(START_COOKIE, path="/")
        return response

    async def rate_page(request: Request) -> Response:
        session = await current_session(request)
        if session is None:
            return RedirectResponse("/", status_code=303)
        trial = await run_in_threadpool(study.current_trial, session)
        if trial is None:
            return RedirectResponse("/done", status_code=303)
        last = await run_in_threadpool(study.last_feedback, session) if session.feedback else None
        return page(
            "rate.html",
            session=session,
            trial=trial,
            image_url=f"/img/{trial.token}",
            display=display,
            last=last,
            feedback_delay_ms=feedback_delay_ms,
        )

    async def image(request: Request) -> Response:
        token = request.path_params["token"]
        session = await current_session(request)
        if session is None or not TOKEN_PATTERN.match(token):
            return Response("Not found", status_code=404, media_type="text/plain")
        image_id = await run_in_threadpool(study.trial_image, session, token)
        if image_id is None:
            return Response("Not found", status_code=404, media_type="text/plain")
        return Response(
            served[image_id], media_type="image/png", headers={"cache-control": "no-store, private"}
        )

    async def answer(request: Request) -> Response:
        form = await read_form(request)
        session = await current_session(request)
        if session is None:
            return error(request, 401, "No rating session: open the start page.")
        if not same_origin(request, origins) or not tokens_equal(form.get("csrf"), session.csrf):
            return error(request, 403, "This answer did not come from this site's page. Reload the page.")
        trial = form.get("trial", "")
        if not TOKEN_PATTERN.match(trial):
            return error(request, 404, "unknown image")
        client_ms = _float_or_none(form.get("client_ms"))
        try:
            result = await run_in_threadpool(
                study.record_answer, session, trial, form.get("answer", ""), client_ms
            )
        except AnswerRefused as refused:
            return error(request, refused.status, refused.reason)
        if not wants_json(request):
            return RedirectResponse("/done" if result.session.done else "/rate", status_code=303)
        body: dict = {"ok": True, "position": result.session.answered, "total": session.n_total}
        if session.feedback:
            body["feedback"] = {"correct": result.correct, "truth": result.truth}
        if result.session.done:
            body["done"] = "/done"
        else:
            following = await run_in_threadpool(study.current_trial, result.session)
            assert following is not None
            body["next"] = {"trial": following.token, "image": f"/img/{following.token}"}
        return JSONResponse(body)

    async def done_page(request: Request) -> Response:
        session = await current_session(request)
        if session is None:
            return RedirectResponse("/", status_code=303)
        if not session.done:
            return RedirectResponse("/rate", status_code=303)
        right = await run_in_threadpool(study.session_correct, session) if session.feedback else None
        # the no-feedback condition tells no truth at all, not even at the end (a rater could start again)
        mistakes = await run_in_threadpool(study.session_mistakes, session) if session.feedback else []
        return page("done.html", session=session, right=right, mistakes=mistakes, display=display)

    async def static_file(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in static:
            return Response("Not found", status_code=404, media_type="text/plain")
        return Response(static[name], media_type=STATIC_FILES[name], headers={"cache-control": "no-cache"})

    def is_admin(request: Request) -> bool:
        return tokens_equal(request.cookies.get(ADMIN_COOKIE), admin_token)

    async def admin(request: Request) -> Response:
        given = request.query_params.get("token")
        if given is not None:
            if not tokens_equal(given, admin_token):
                return page("error.html", 403, message="Wrong admin token.")
            response = RedirectResponse("/admin", status_code=303)
            set_cookie(response, ADMIN_COOKIE, admin_token, path="/admin", samesite="strict")
            return response
        if not is_admin(request):
            return page("error.html", 403, message="Open the admin link printed when the server started.")
        result = await run_in_threadpool(report_from_db, study)
        return page(
            "admin.html",
            report=result,
            sources=study.sources(),
            per_rater=per_rater,
            feedback=feedback,
            sessions=study.session_counts(),
        )

    async def admin_csv(request: Request) -> Response:
        if not is_admin(request):
            return page("error.html", 403, message="Open the admin link printed when the server started.")
        rows = await run_in_threadpool(study.answer_rows)
        buffer = io.StringIO()
        write_csv_to(rows, buffer)
        return Response(
            buffer.getvalue(),
            media_type="text/csv",
            headers={"content-disposition": 'attachment; filename="answers.csv"'},
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        detail = exc.detail if isinstance(exc, HTTPException) else "Not found"
        return error(request, status, str(detail))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        study.close()

    app = Starlette(
        routes=[
            Route("/", start_page, methods=["GET"]),
            Route("/start", start, methods=["POST"]),
            Route("/rate", rate_page, methods=["GET"]),
            Route("/img/{token}", image, methods=["GET"]),
            Route("/answer", answer, methods=["POST"]),
            Route("/done", done_page, methods=["GET"]),
            Route("/static/{name}", static_file, methods=["GET"]),
            Route("/admin", admin, methods=["GET"]),
            Route("/admin/answers.csv", admin_csv, methods=["GET"]),
        ],
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: not_found},
        lifespan=lifespan,
    )
    app.state.study = study
    app.state.admin_token = admin_token
    return app


def _check_rotation(admin_token: str | None, new_admin_token: bool) -> None:
    if admin_token and new_admin_token:
        raise ImprovedGANError("--admin-token and --new-admin-token contradict each other; give one of them")


def _stored_admin_token(study: StudyDB, given: str | None, rotate: bool) -> str:
    """The study's admin token (:meth:`StudyDB.admin_token`), refused if the file holds a bad one."""
    token = study.admin_token(given, rotate)
    if not TOKEN_PATTERN.match(token):
        raise ImprovedGANError(f"{study.path}: damaged admin token; pass --new-admin-token to make a new one")
    return token


def _check_pools(study: StudyDB, per_rater: int, feedback: str) -> None:
    """Enough images per source that no image repeats within a session, whatever its draw."""
    sources = study.sources()
    n_models = sum(not is_real for _, is_real, _, _ in sources)
    draws = {draw_for(f) for f in {"on": [True], "off": [False], "random": [True, False]}[feedback]}
    need_real, need_fake = images_needed(per_rater, n_models, sorted(draws))
    why = (
        " (with feedback each image is drawn real or generated independently)" if INDEPENDENT in draws else ""
    )
    for name, is_real, _, n in sources:
        need = need_real if is_real else need_fake
        if n < need:
            raise ImprovedGANError(
                f"source {name!r} has {n} images but {per_rater} per rater need {need}{why}; "
                "lower --per-rater or give more images"
            )


def served_images(study: StudyDB) -> dict[int, bytes]:
    """Every image of the study as served: re-encoded from its pixels into one uncompressed PNG
    format, held in memory. All have the same length, so neither the bytes, their length nor
    the time to read them from disk can tell a real image from a generated one."""
    served = {
        image_id: encode_png(pixels)
        for ids, images in study.pixels().values()
        for image_id, pixels in zip(ids, images)
    }
    if len({len(png) for png in served.values()}) > 1:
        raise ImprovedGANError(f"{study.path}: images of different sizes; the study file is damaged")
    return served


def _float_or_none(value: str | None) -> float | None:
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    return number if number is not None and 0 <= number < 3.6e6 else None


def serve(
    db_path: str | Path,
    real: str | None = None,
    fakes: Sequence[str] = (),
    feedback: str = "off",
    per_rater: int = 40,
    host: str = "127.0.0.1",
    port: int = 8000,
    images_per_source: int = 500,
    seed: int = 0,
    admin_token: str | None = None,
    secure_cookies: bool = False,
    origins: Sequence[str] = (),
    new_admin_token: bool = False,
) -> int:
    """Prepare the study and run it with uvicorn until interrupted; prints the rater and admin links
    (the admin token is the study's own, the same on every restart unless ``new_admin_token``).

    The port is bound first, so a bad or busy one is refused before anything is stored or printed.
    Warns (stderr) when a simple classifier tells a model's images from the real ones.
    """
    sock = listen_socket(host, port)
    try:
        check_admin_token(admin_token)
        _check_rotation(admin_token, new_admin_token)
        check_origins(origins)
        db = prepare_study(db_path, real, fakes, images_per_source, seed)
        app = create_app(
            db,
            feedback,
            per_rater,
            admin_token,
            secure_cookies,
            origins=origins,
            new_admin_token=new_admin_token,
        )
        for warning in study_giveaways(db):
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        shown = f"[{host}]" if ":" in host else host
        base = f"http://{shown}:{port}"
        counts = ", ".join(f"{name}: {n}" for name, _, _, n in db.sources())
        print(f"Visual Turing test: {db_path} ({counts} images; {per_rater} per rater; feedback {feedback})")
        print(f"  raters: {base}/")
        print(f"  admin:  {base}/admin?token={app.state.admin_token}", flush=True)
        if host not in ("127.0.0.1", "localhost", "::1"):
            print(
                "  note: listening beyond this machine; put it behind HTTPS (and use --secure-cookies)",
                flush=True,
            )
        run_server(app, sock)
    finally:
        sock.close()
    return 0


def run_server(app: Starlette, sock: socket.socket) -> None:
    """Serve ``app`` with uvicorn on the bound ``sock`` until interrupted."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
