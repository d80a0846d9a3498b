"""Secrets kept out of what the user sees: one mask, and a Redactor that applies it."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "********"


class Redactor:
    """Replaces every known secret in a text with MASK."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        # Short strings would mask ordinary words; real secrets here are long.
        self._secrets.update(s for s in secrets if len(s) >= 8)

    def secrets(self) -> list[str]:
        return sorted(self._secrets)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text


def masked(value: str, reveal: bool) -> str:
    """`value` itself with `reveal`, else the mask."""
    return value if reveal else MASK
