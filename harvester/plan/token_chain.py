"""The forward tokens one end of a NOBB walk follows, and the guards that stop a chain going round.

``Walk`` (``walk.py``) hands each page's forward token and keys to ``TokenChain.follow``, which
raises ``PaginationError`` naming the walk rather than loop forever on: a forward token equal to
the previous one, the same page twice (the same count, first and last key), more than
``max_empty_pages`` empty pages with a forward token over the walk, or ``max_pages`` pages. Page 1
served again after an expired token starts a fresh chain (``restart``); a resumed walk continues
a saved one (``resume``).
"""

from __future__ import annotations

from collections.abc import Sequence

from harvester.errors import PaginationError

__all__ = ["TokenChain"]


class TokenChain:
    """One walk's previous token and page, and its count of empty pages (a pure state machine)."""

    def __init__(self, *, max_pages: int, max_empty_pages: int) -> None:
        self._max_pages = max_pages
        self._max_empty = max_empty_pages
        self._prev_page: tuple[int, int, int] | None = None
        self._prev_token: str | None = None
        self._empty = 0

    def resume(self, token: str) -> None:
        """A resumed walk continues a saved chain at ``token``: the next token must differ."""
        self._prev_token = token

    def restart(self) -> None:
        """Page 1 again after an expired token: a fresh chain, no previous token or page."""
        self._prev_token = None
        self._prev_page = None

    def follow(self, token: str, keys: Sequence[int], *, pages: int, label: str) -> None:
        """Take ``token``, the forward token of the walk's ``pages``-th page, which brought
        ``keys``; ``PaginationError`` (``request=label``) if the chain goes round."""
        if not keys:
            self._empty += 1
            if self._empty > self._max_empty:
                raise PaginationError("too many empty pages with a forward token", request=label)
        signature = (len(keys), keys[0], keys[-1]) if keys else None
        if token == self._prev_token:
            raise PaginationError("the forward token did not change", request=label)
        if signature is not None and signature == self._prev_page:
            raise PaginationError("the same page came back twice", request=label)
        if pages >= self._max_pages:
            raise PaginationError(f"more than {self._max_pages} pages", request=label)
        self._prev_token, self._prev_page = token, signature
