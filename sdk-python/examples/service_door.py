"""The service door across the axes: rate (check, check_many), look-ahead (peek, forecast) and cost
(debit). Run the server first: ./scripts/serve.sh (memory store, examples/policies.yaml)."""

from __future__ import annotations

import os

from throttlekit import ServiceBackend

TARGET = os.environ.get("THROTTLEKIT_TARGET", "localhost:50051")


def main() -> None:
    with ServiceBackend(TARGET) as rl:
        for i in range(6):
            d = rl.check("api", "alice")
            print(f"api check {i + 1}: allowed={d.allowed} remaining={d.remaining} retry_after_ms={d.retry_after_ms}")
        for key, d in zip(["bob", "carol"], rl.check_many("search", ["bob", "carol"]), strict=True):
            print(f"search {key}: allowed={d.allowed} remaining={d.remaining}")
        p = rl.peek("logins", "alice")
        print(f"logins peek: {p.remaining} left, nothing spent")
        f = rl.forecast("api", "alice")
        print(f"api forecast: {f.spendable_now} now; more at {f.next_replenish_at}; full at {f.full_at}")
        d = rl.debit("completions", "alice", 1200)
        print(f"completions: {d.remaining} tokens left this minute")


if __name__ == "__main__":
    main()
