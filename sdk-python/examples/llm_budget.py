"""An LLM token budget: meter tokens after the stream ends (debit), refuse new requests once the
minute's budget is spent."""

from __future__ import annotations

import os

from throttlekit import ServiceBackend

TARGET = os.environ.get("THROTTLEKIT_TARGET", "localhost:50051")


def main() -> None:
    with ServiceBackend(TARGET) as rl:
        for turn, tokens in enumerate([30_000, 45_000, 40_000, 10_000], start=1):
            d = rl.debit("completions", "team-7", tokens)
            state = "metered" if d.allowed else f"refused; budget resets in {d.retry_after_ms} ms"
            print(f"turn {turn}: {tokens} tokens {state} (remaining {d.remaining})")


if __name__ == "__main__":
    main()
