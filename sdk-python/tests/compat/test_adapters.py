"""The framework adapters, through each framework's test client, as 0.5.1 configures them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Server, free_port
from throttlekit import ServiceBackend, bind_policy

IETF = {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"}


def _names(headers: Any) -> set[str]:
    return {k.lower() for k in headers.keys()}  # noqa: SIM118  # werkzeug's Headers iterate as pairs


def _dead() -> ServiceBackend:
    return ServiceBackend(f"127.0.0.1:{free_port()}")


def test_fastapi(server: Server) -> None:
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from throttlekit.contrib.fastapi import RateLimit, ThrottleKitMiddleware

    rl, dead = ServiceBackend(server.addr), _dead()
    app = FastAPI()

    @app.get("/a", dependencies=[Depends(RateLimit(bind_policy(rl, "window"), key=lambda r: "fa"))])
    def a() -> dict[str, str]:
        return {"ok": "a"}

    @app.get(
        "/quiet", dependencies=[Depends(RateLimit(bind_policy(rl, "api"), key=lambda r: "fq", stamp_headers=False))]
    )
    def quiet() -> dict[str, str]:
        return {"ok": "quiet"}

    @app.get("/closed", dependencies=[Depends(RateLimit(bind_policy(dead, "api"), on_unavailable="deny"))])
    def closed() -> dict[str, str]:
        return {"ok": "closed"}

    @app.get("/open", dependencies=[Depends(RateLimit(bind_policy(dead, "api")))])
    def open_() -> dict[str, str]:
        return {"ok": "open"}

    client = TestClient(app)
    rs = [client.get("/a") for _ in range(4)]
    assert [r.status_code for r in rs] == [200, 200, 200, 429]
    assert _names(rs[0].headers) >= IETF and rs[0].headers["RateLimit-Remaining"] == "2"
    assert "retry-after" in _names(rs[3].headers)
    q = client.get("/quiet")
    assert q.status_code == 200 and not (IETF & _names(q.headers))
    assert client.get("/closed").status_code == 503
    assert client.get("/open").status_code == 200

    mw = FastAPI()
    mw.add_middleware(ThrottleKitMiddleware, checker=bind_policy(dead, "api"), on_unavailable="deny")

    @mw.get("/x")
    def x() -> str:
        return "x"

    assert TestClient(mw).get("/x").status_code == 503
    rl.close()
    dead.close()


def test_starlette(server: Server) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from throttlekit.contrib.starlette import ThrottleKitMiddleware

    async def home(request: Any) -> PlainTextResponse:
        return PlainTextResponse("home")

    rl = ServiceBackend(server.addr)
    app = Starlette(routes=[Route("/", home)])
    app.add_middleware(ThrottleKitMiddleware, checker=bind_policy(rl, "window"), style="both")
    rs = [TestClient(app).get("/") for _ in range(4)]
    assert [r.status_code for r in rs] == [200, 200, 200, 429]
    assert IETF | {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= _names(rs[0].headers)
    rl.close()


def test_flask(server: Server) -> None:
    from flask import Flask

    from throttlekit.contrib.flask import ThrottleKit

    rl, dead = ServiceBackend(server.addr), _dead()
    app = Flask("compat")
    tk = ThrottleKit(app, checker=bind_policy(rl, "window"), key=lambda: "fl", default_cost=2)

    @app.get("/")
    @tk.limit()
    def index() -> str:
        return "index"

    client = app.test_client()
    first = client.get("/")
    assert first.status_code == 200 and first.headers["RateLimit-Remaining"] == "1"  # default_cost 2 of 3
    assert client.get("/").status_code == 429

    quiet_app = Flask("quiet")
    quiet = ThrottleKit(quiet_app, checker=bind_policy(rl, "api"), key=lambda: "fq", headers_enabled=False)

    @quiet_app.get("/")
    @quiet.limit(cost=None)
    def q() -> str:
        return "q"

    r = quiet_app.test_client().get("/")
    assert r.status_code == 200 and not (IETF & _names(r.headers))

    closed_app = Flask("closed")
    closed = ThrottleKit(closed_app, checker=bind_policy(dead, "api"), on_unavailable="deny")

    @closed_app.get("/")
    @closed.limit()
    def c() -> str:
        return "c"

    assert closed_app.test_client().get("/").status_code == 503
    rl.close()
    dead.close()


def _django() -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__, SECRET_KEY="compat")
        django.setup()


def test_django(server: Server) -> None:
    _django()
    from django.http import HttpResponse
    from django.test import RequestFactory

    from throttlekit.contrib.django import Ratelimited, ThrottleKitMiddleware, rate_limit

    rl, dead = ServiceBackend(server.addr), _dead()
    factory = RequestFactory()

    @rate_limit(bind_policy(rl, "window"), key=lambda r: "dj")
    def view(request: Any) -> HttpResponse:
        return HttpResponse("ok")

    ok = [view(factory.get("/")) for _ in range(3)]
    assert all(r.status_code == 200 for r in ok) and _names(ok[0].headers) >= IETF
    denied_request = factory.get("/")
    with pytest.raises(Ratelimited) as exc:
        view(denied_request)
    assert not exc.value.decision.allowed and denied_request.throttlekit_decision is exc.value.decision
    middleware = ThrottleKitMiddleware(lambda r: HttpResponse("unused"))
    mapped = middleware.process_exception(denied_request, exc.value)
    assert mapped is not None
    assert mapped.status_code == 429 and "Retry-After" in mapped.headers and _names(mapped.headers) >= IETF
    assert middleware.process_exception(denied_request, ValueError("other")) is None

    @rate_limit(bind_policy(rl, "window"), key=lambda r: "dj", block=False, stamp_headers=False)
    def lenient(request: Any) -> HttpResponse:
        d = request.throttlekit_decision
        return HttpResponse("denied" if not d.allowed else "allowed")

    r = lenient(factory.get("/"))
    assert r.status_code == 200 and r.content == b"denied" and not (IETF & _names(r.headers))

    @rate_limit(bind_policy(dead, "api"), block=False)
    def outage(request: Any) -> HttpResponse:
        return HttpResponse("none" if request.throttlekit_decision is None else "some")

    assert outage(factory.get("/")).content == b"none"

    @rate_limit(bind_policy(dead, "api"), on_unavailable="deny")
    def closed(request: Any) -> HttpResponse:
        return HttpResponse("never")

    assert closed(factory.get("/")).status_code == 503
    rl.close()
    dead.close()


urlpatterns: list[Any] = []
