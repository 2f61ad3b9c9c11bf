"""Errors raised by the library for input that cannot be used.

Every rejection names what was expected and what came, and carries a short
``kind`` key under which nodes count the drop in /diagnostics.
"""

from __future__ import annotations


class InputError(ValueError):
    """An input (message, file, array) that does not fit what was expected.

    Args:
        kind: short, stable key for counting (e.g. ``'channels'``, ``'encoding'``).
        expected: what the consumer needs, in words a user can act on.
        got: what actually came.
    """

    def __init__(self, kind: str, expected: str, got: str) -> None:
        self.kind = kind
        self.expected = expected
        self.got = got
        super().__init__(f'{kind}: expected {expected}, got {got}')

    def __reduce__(self):
        # raised in a worker process (training's feature pool) and re-raised
        # in the parent: pickled with its three fields, not the message
        return (type(self), (self.kind, self.expected, self.got))


class ConfigError(ValueError):
    """A configuration file or parameter that cannot be used (one readable line)."""
