"""Request and response hygiene of the rating app: security headers, cookies, form parsing,
same-origin checks, text cleaning and the page's display settings."""

from __future__ import annotations

import errno
import hmac
import re
import socket
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from improved_gan.errors import ImprovedGANError

SESSION_COOKIE = "turing_session"
START_COOKIE = "turing_start"
ADMIN_COOKIE = "turing_admin"
FEEDBACK_MODES = ("off", "on", "random")
MAX_BODY = 4096
MAX_TEXT = 100
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
STATIC_FILES = {"turing.css": "text/css", "turing.js": "text/javascript", "favicon.svg": "image/svg+xml"}
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; img-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def origin_of(spec: str) -> str:
    path = Path(spec.partition("=")[2] if "=" in spec and not Path(spec).exists() else spec)
    return str(path.resolve()) if path.exists() else spec


# -- the command line's settings -------------------------------------------------------------------
def listen_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening), so that a bad port, a host that is
    not this machine's and a port in use are refused before anything is printed or stored."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ImprovedGANError(f"--port must be a whole number from 1 to 65535, got {port}; e.g. --port 8000")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (OSError, UnicodeError, ValueError) as exc:
        raise ImprovedGANError(
            f"--host {host!r} is not a usable address ({getattr(exc, 'strerror', None) or exc}); "
            "give e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every network)"
        ) from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: restarts reuse the port
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ImprovedGANError(_bind_problem(host, port, exc)) from None
    return sock


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        other = port + 1 if port < 65535 else port - 1
        return (
            f"port {port} on {host} is already in use (another server?); stop it or pass another "
            f"--port, e.g. --port {other}"
        )
    if exc.errno == errno.EACCES:
        return f"port {port} needs administrator rights; pass --port 1024 or above, e.g. --port 8000"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"--host {host} is not an address of this machine; give 127.0.0.1, 0.0.0.0 or one of its own"
    return f"cannot listen on {host}:{port} ({exc.strerror or exc}); pass another --host or --port"


def check_admin_token(token: str | None) -> None:
    if token and not TOKEN_PATTERN.match(token):
        raise ImprovedGANError(
            "--admin-token must be 16 to 64 letters, digits, '_' or '-'; leave it out for a random one"
        )


def check_origins(origins: Sequence[str]) -> None:
    for origin in origins:
        parts = urlsplit(origin)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or parts.path not in ("", "/")
            or (parts.query or parts.fragment)
        ):
            raise ImprovedGANError(
                f"--origin {origin!r} is not an origin; give scheme and host only, e.g. https://study.example.org"
            )


# -- helpers ---------------------------------------------------------------------------------------
class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response, and ``no-store`` unless one is set."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in names]
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def read_form(request: Request) -> dict[str, str]:
    """A small ``application/x-www-form-urlencoded`` body as a dict; 4 KiB at most, no repeated keys."""
    if (
        request.headers.get("content-type", "").split(";")[0].strip().lower()
        != "application/x-www-form-urlencoded"
    ):
        raise HTTPException(415, "send a form (application/x-www-form-urlencoded)")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise HTTPException(413, "request too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=16)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(400, "malformed form") from exc
    form = dict(pairs)
    if len(form) != len(pairs):
        raise HTTPException(400, "repeated form field")
    return form


def same_origin(request: Request, origins: Sequence[str] = ()) -> bool:
    """False when the browser says the request comes from another site (Sec-Fetch-Site, Origin).

    ``origins``: the public origins (``https://host[:port]``) when a proxy serves the page under
    another host name than the one this server sees; by default the Origin must match Host.
    """
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    if origins:
        return origin.rstrip("/").lower() in {o.rstrip("/").lower() for o in origins}
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


def clean_text(value: str | None) -> str:
    """A rater's name or worker id: printable characters only, 100 at most."""
    value = "".join(c for c in (value or "") if unicodedata.category(c)[0] != "C")
    return value.strip()[:MAX_TEXT]


def tokens_equal(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


@dataclass(frozen=True)
class Display:
    """How large the page draws an image: an integer upscale, pixelated for small images."""

    width: int
    height: int
    pixelated: bool

    @classmethod
    def for_shape(cls, shape: Sequence[int], target: int = 448) -> Display:
        height, width = (shape[0], shape[1]) if len(shape) >= 2 else (28, 28)
        scale = max(1, target // max(height, width))
        return cls(width * scale, height * scale, max(height, width) <= 64)
