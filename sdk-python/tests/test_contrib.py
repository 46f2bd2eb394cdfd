"""The framework adapters, each through the framework's own test client, against a real server:
429 with headers on a denial, headers on an allow, fail open when the service is unreachable (503 when
told to fail closed), and keys taken from the connecting peer (a forged X-Forwarded-For changes
nothing). What 0.5.1 code relies on is pinned in tests/compat; these cover what 0.6 adds."""

from __future__ import annotations

from typing import Any

import pytest

from throttlekit import RateLimited, ServiceBackend, ServiceUnavailableError, bind_policy, rate_limit

from .conftest import Server, free_port

FORGED = {"X-Forwarded-For": "10.9.8.7"}


def _dead() -> ServiceBackend:
    return ServiceBackend(f"127.0.0.1:{free_port()}", timeout=2)


def test_rate_limit_decorator(server: Server) -> None:
    def greet(user: str) -> str:
        return f"hi {user}"

    def ok(user: str) -> str:
        return "ok"

    with ServiceBackend(server.addr) as rl:
        limited = rate_limit(bind_policy(rl, "window"), key=lambda user: user)(greet)
        assert [limited("dec") for _ in range(3)] == ["hi dec"] * 3
        with pytest.raises(RateLimited) as exc:
            limited("dec")
        assert exc.value.retry_after_ms > 0 and not exc.value.decision.allowed
    with _dead() as dead:
        with pytest.raises(ServiceUnavailableError):
            rate_limit(bind_policy(dead, "window"), key=str)(ok)("u")  # as in 0.5: the caller decides
        assert rate_limit(bind_policy(dead, "window"), key=str, on_unavailable="allow")(ok)("u") == "ok"
        closed = rate_limit(bind_policy(dead, "window"), key=str, on_unavailable="deny")(ok)
        with pytest.raises(RateLimited):
            closed("u")
    with pytest.raises(ValueError, match="on_unavailable"):
        rate_limit(bind_policy(rl, "window"), key=str, on_unavailable="maybe")  # type: ignore[arg-type]


def test_fastapi_dependency_and_middleware(server: Server) -> None:
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from throttlekit.contrib.fastapi import RateLimit, ThrottleKitMiddleware

    rl = ServiceBackend(server.addr)
    app = FastAPI()

    @app.get(
        "/dep", dependencies=[Depends(RateLimit(bind_policy(rl, "window"), style="structured", policy_name="window"))]
    )
    def dep() -> dict[str, str]:
        return {"ok": "yes"}

    client = TestClient(app)
    responses = [client.get("/dep", headers=FORGED) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[0].headers["RateLimit"].startswith('"window";r=2')
    assert responses[3].headers["Retry-After"]

    mw = FastAPI()
    mw.add_middleware(ThrottleKitMiddleware, checker=bind_policy(rl, "window"), key=lambda scope: "mw-key")

    @mw.get("/x")
    def x() -> str:
        return "x"

    codes = [TestClient(mw).get("/x").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    rl.close()

    dead = _dead()
    open_app = FastAPI()

    @open_app.get("/y", dependencies=[Depends(RateLimit(bind_policy(dead, "window")))])
    def y() -> str:
        return "y"

    assert TestClient(open_app).get("/y").status_code == 200  # the service is down: fail open
    dead.close()


def test_starlette_middleware_keys_on_the_peer(server: Server) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from throttlekit.contrib.starlette import ThrottleKitMiddleware

    async def home(request: Any) -> PlainTextResponse:
        return PlainTextResponse("home")

    rl = ServiceBackend(server.addr)
    app = Starlette(routes=[Route("/", home)])
    app.add_middleware(ThrottleKitMiddleware, checker=bind_policy(rl, "window"), style="legacy")
    # Every request comes from the test client's one peer, whatever it claims to forward.
    codes = []
    for i in range(4):
        r = TestClient(app).get("/", headers={"X-Forwarded-For": f"10.0.0.{i}"})
        codes.append(r.status_code)
    assert codes == [200, 200, 200, 429]
    assert r.headers["X-RateLimit-Remaining"] == "0"
    rl.close()


def test_async_adapters_run_a_sync_checker_off_the_event_loop() -> None:
    import threading

    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from throttlekit import Decision
    from throttlekit.contrib.fastapi import RateLimit, ThrottleKitMiddleware

    threads: list[int] = []

    def checker(key: str, *, cost: int = 1) -> Decision:
        threads.append(threading.get_ident())
        return Decision(True, 1, 0, 0, 0)

    loop_threads: list[int] = []
    app = FastAPI()
    app.add_middleware(ThrottleKitMiddleware, checker=checker)

    @app.get("/", dependencies=[Depends(RateLimit(checker))])
    async def index() -> str:
        loop_threads.append(threading.get_ident())
        return "ok"

    assert TestClient(app).get("/").status_code == 200
    assert len(threads) == 2 and loop_threads and loop_threads[0] not in threads


def test_flask(server: Server) -> None:
    from flask import Flask

    from throttlekit.contrib.flask import ThrottleKit

    rl = ServiceBackend(server.addr)
    app = Flask(__name__)
    limiter = ThrottleKit(app, bind_policy(rl, "window"), style="structured", policy_name="window")

    @app.get("/")
    @limiter.limit()
    def index() -> str:
        return "index"

    client = app.test_client()
    responses = [client.get("/", headers=FORGED) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[0].headers["RateLimit-Policy"] == '"window";q=3'
    rl.close()

    dead = _dead()
    down = Flask("down")
    down_limiter = ThrottleKit(down, bind_policy(dead, "window"))

    @down.get("/")
    @down_limiter.limit()
    def index2() -> str:
        return "still serving"

    assert down.test_client().get("/").status_code == 200
    dead.close()


def test_django(server: Server) -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__, SECRET_KEY="test")
        django.setup()
    from django.http import HttpResponse
    from django.test import Client, override_settings
    from django.urls import path

    from throttlekit.contrib.django import rate_limit as django_rate_limit

    rl = ServiceBackend(server.addr)

    @django_rate_limit(bind_policy(rl, "window"))
    def view(request: Any) -> HttpResponse:
        return HttpResponse("ok")

    urlpatterns[:] = [path("", view)]
    with override_settings(
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["throttlekit.contrib.django.ThrottleKitMiddleware"],
        THROTTLEKIT_HEADER_STYLE="legacy",
    ):
        client = Client(REMOTE_ADDR="192.0.2.1")
        responses = [client.get("/", HTTP_X_FORWARDED_FOR="10.1.1.1") for _ in range(4)]
        assert [r.status_code for r in responses] == [200, 200, 200, 429]
        assert responses[3]["Retry-After"] and responses[3]["X-RateLimit-Remaining"] == "0"
        other = Client(REMOTE_ADDR="192.0.2.2").get("/")
        assert other.status_code == 200  # another peer has its own budget
    with override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=[]):
        # Without the middleware, Django answers the PermissionDenied with 403, as 0.5 does.
        assert Client(REMOTE_ADDR="192.0.2.1").get("/").status_code == 403
    rl.close()


urlpatterns: list[Any] = []
