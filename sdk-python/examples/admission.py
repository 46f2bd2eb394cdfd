"""Concurrency admission: hold a slot while the work runs; release it (as dropped when the work fails),
and keep it alive with heartbeats while it runs long."""

from __future__ import annotations

import os
import time

from throttlekit import ServiceBackend

TARGET = os.environ.get("THROTTLEKIT_TARGET", "localhost:50051")


def main() -> None:
    with ServiceBackend(TARGET) as rl:
        with rl.admit("checkout", heartbeat=True) as a:
            if not a.allowed:
                print(f"busy: retry in {a.decision.retry_after_ms} ms")
                return
            print(f"admitted (lease {a.lease_id[:8]}…); working")
            time.sleep(0.5)
        print(f"released: active={a.active}")
        try:
            with rl.admit("checkout") as b:
                raise TimeoutError("the downstream call timed out")
        except TimeoutError:
            print(f"the failed work's slot was released as dropped: active={b.active}")


if __name__ == "__main__":
    main()
