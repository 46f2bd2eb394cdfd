"""A FastAPI app: one route limited by a dependency (429 with RateLimit-* headers when denied), keyed
on the caller's address. Run: uvicorn fastapi_app:app (with the server from ./scripts/serve.sh)."""

from __future__ import annotations

import os

from fastapi import Depends, FastAPI

from throttlekit import ServiceBackend, bind_policy
from throttlekit.contrib.fastapi import RateLimit

backend = ServiceBackend(os.environ.get("THROTTLEKIT_TARGET", "localhost:50051"))
app = FastAPI()


@app.get("/items", dependencies=[Depends(RateLimit(bind_policy(backend, "api")))])
def items() -> list[str]:
    return ["apple", "pear"]
