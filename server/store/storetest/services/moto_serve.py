"""Serves moto's DynamoDB-compatible API for the conformance suite.

moto checks a PutItem's condition and then stores the item with nothing
held in between, so on its threaded server two puts conditioned on one
version can both succeed (TestMotoConditionalPutRace shows it). DynamoDB
never does that: a conditional write is atomic there. With --serial every
request runs alone, which gives the suite DynamoDB's atomicity and tests
our store rather than moto's race. --switch-interval shortens Python's
thread switch interval, so interleavings that a loaded machine makes
rarely happen on every run.

Usage: moto_serve.py PORT [--serial] [--switch-interval SECONDS]
"""

import argparse
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def serialized(app: Any) -> Callable[[dict[str, Any], Any], Iterable[bytes]]:
    lock = threading.Lock()

    def serve(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with lock:
            # The body is produced under the lock too: moto builds it
            # while it handles the request.
            return list(app(environ, start_response))

    return serve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--serial", action="store_true")
    parser.add_argument("--switch-interval", type=float, default=0)
    args = parser.parse_args()
    if args.switch_interval > 0:
        sys.setswitchinterval(args.switch_interval)
    app: Any = DomainDispatcherApplication(create_backend_app)
    if args.serial:
        app = serialized(app)
    run_simple(
        "127.0.0.1",
        args.port,
        app,
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
