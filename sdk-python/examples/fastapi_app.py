"""A FastAPI app: one route limited by a dependency (429 with RateLimit-* headers when denied), keyed
on the caller's address, on its own policy ("items" in examples/policies.yaml, so the other examples
never spend its budget). With the server from ./scripts/serve.sh running:

    pip install "./sdk-python[fastapi]" uvicorn
    cd sdk-python/examples && uvicorn fastapi_app:app --port 8000
    curl -i http://127.0.0.1:8000/items
"""

from __future__ import annotations

import os

from fastapi import Depends, FastAPI

from throttlekit import ServiceBackend, bind_policy
from throttlekit.contrib.fastapi import RateLimit

backend = ServiceBackend(os.environ.get("THROTTLEKIT_TARGET", "localhost:50051"))
app = FastAPI()


@app.get("/items", dependencies=[Depends(RateLimit(bind_policy(backend, "items")))])
def items() -> list[str]:
    return ["apple", "pear"]
