"""What the adapters share: the 429 body and the headers of a decision."""

from __future__ import annotations

from ..decision import Decision
from ..headers import Style, decision_headers

TOO_MANY = b'{"error":"rate limited"}'


def headers_for(decision: Decision, style: Style, policy: str) -> dict[str, str]:
    return decision_headers(decision, style, policy=policy)
