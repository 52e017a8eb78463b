"""A rule's answer: allowed, or refused with a stable code and its German sentence (rules.speakers, rules.votes).

Each rule module keeps its own REASONS (code -> German sentence) and `refuse`; the answer's shape is this one,
so the use cases and the web treat every rule's refusal alike.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    """ok, or refused with a stable code and its German sentence."""

    ok: bool
    code: str = ""
    text: str = ""

    def __bool__(self) -> bool:
        return self.ok


ALLOWED = Decision(True)
