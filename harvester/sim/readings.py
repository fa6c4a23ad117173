"""The other readings of the API docs' open points (open-points.md), one switch each, all off.

``Readings`` is one frozen value inside ``SimSettings`` (``settings.readings``); ``add_arguments``
adds its flags to ``harvester simulate`` in one block and ``readings_from`` reads them back. The
default ``Readings()`` is the simulator's own reading, the one the rest of the docs describe; each
field picks another that a real server may have chosen (docs/simulator.md lists each beside its
row of open-points.md). Only the API modules (``nobb.py``, ``dbk.py``, ``wire.py``) act on them.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "CapAnswer",
    "Datestamps",
    "Encoding",
    "HeaderStyle",
    "OnixRelease",
    "Readings",
    "add_arguments",
    "readings_from",
]

CapAnswer = Literal["silent", "413", "400", "none"]
HeaderStyle = Literal["camel", "kebab"]
Datestamps = Literal["stamped", "absent", "old"]
OnixRelease = Literal["3.1", "3.0", "none"]
Encoding = Literal["negotiate", "gzip", "br", "identity"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Readings:
    """Which reading of each open point the simulator serves (module docstring).

    >>> Readings(dbk_cap_answer="413").dbk_cap_answer
    '413'
    """

    #: NOBB paging headers as the docs' text spells them (``x-totalHits``, ``x-forwardToken``,
    #: ``x-backwardToken``: camel) or as their example does (``x-total-hits``...: kebab).
    nobb_header_style: HeaderStyle = "camel"
    #: NOBB ``x-totalHits`` only on a chain's first page (not on pages asked with a token).
    nobb_total_hits_first_only: bool = False
    #: NOBB ``pageSize`` above this is served this many items, silently (0: a ``pageSize`` above
    #: 10000 answers 400, as the docs' maximum reads).
    nobb_page_clamp: int = 0
    #: NOBB: the first ask of every page answers 202 Accepted with an empty body (``Retry-After:
    #: 1`` on about half of them, none on the rest); asked again, the page comes.
    nobb_accepted: bool = False
    #: NOBB tokens die ``token_ttl`` after their own issue, not after the chain's first page.
    nobb_token_from_issue: bool = False
    #: NOBB: an expired token is answered 400 like a garbage one, not with page 1.
    nobb_expired_400: bool = False
    #: DBK: a window holding more than ``dbk_max_products`` is cut off silently, refused with
    #: 413 or 400 (problem+json stating the cap), or sent whole (no cap at all).
    dbk_cap_answer: CapAnswer = "silent"
    #: DBK: an empty window answers 200 with a message holding ``<NoProduct/>``, not 204.
    dbk_empty_200: bool = False
    #: DBK: the message's namespace and release: ONIX 3.1, ONIX 3.0, or no namespace.
    dbk_onix: OnixRelease = "3.1"
    #: DBK: products carry their update time as ``datestamp``, none, or one old date for all
    #: (the filter then uses a time the XML does not show).
    dbk_datestamps: Datestamps = "stamped"
    #: DBK: products come in another order on each call, not by update time.
    dbk_shuffle: bool = False
    #: DBK: the refresh endpoint refuses every token with this status (403 as DynamicWeb says
    #: for an expired one, or 401); 0: it renews a valid token.
    dbk_refresh_refuses: int = 0
    #: DBK: the JWT's life when the client does not ask for one (``expirationInSeconds``):
    #: DynamicWeb's default 1800 s, or the site's own (DBK may set a shorter one).
    dbk_token_life: int = 1800
    #: DBK: the JWT signing key changes every this many seconds; every earlier token then
    #: answers 401 (0: never).
    dbk_rotate_key: float = 0.0
    #: DBK: only the docs' time format (ISO 8601 basic with a numeric offset, with or without
    #: seconds: ``20250204T0930-0400``); ``Z``, extended forms and bare dates answer 400.
    dbk_basic_time_only: bool = False
    #: Both: answer compressed as the client offers (br, else gzip), or always gzip, always br,
    #: always identity, whatever ``Accept-Encoding`` offered.
    encoding: Encoding = "negotiate"

    def __post_init__(self) -> None:
        for name, kind in (
            ("dbk_cap_answer", CapAnswer),
            ("dbk_datestamps", Datestamps),
            ("dbk_onix", OnixRelease),
            ("encoding", Encoding),
            ("nobb_header_style", HeaderStyle),
        ):
            if getattr(self, name) not in get_args(kind):
                allowed = ", ".join(get_args(kind))
                raise ValueError(f"{name} must be one of {allowed}, not {getattr(self, name)!r}")
        if self.dbk_refresh_refuses not in (0, 401, 403):
            raise ValueError(
                f"dbk_refresh_refuses must be 0, 401 or 403, not {self.dbk_refresh_refuses}"
            )
        if self.nobb_page_clamp < 0 or self.dbk_rotate_key < 0 or self.dbk_token_life < 1:
            raise ValueError("nobb_page_clamp, dbk_rotate_key >= 0 and dbk_token_life >= 1")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The open points' flags, in one group of ``harvester simulate``'s help."""
    d = Readings()
    g = p.add_argument_group("other readings of the docs' open points (all off by default)")
    _add_nobb(g, d)
    _add_dbk(g, d)
    g.add_argument(
        "--encoding",
        choices=get_args(Encoding),
        default=d.encoding,
        help="compress as offered (default), or always gzip, br or identity",
    )


def _add_nobb(g: argparse._ArgumentGroup, d: Readings) -> None:
    """The NOBB API's readings: header spelling, page size, 202s, token life."""
    g.add_argument(
        "--nobb-header-style",
        choices=get_args(HeaderStyle),
        default=d.nobb_header_style,
        help="NOBB x-totalHits... (camel, the docs' text) or x-total-hits... (kebab)",
    )
    g.add_argument(
        "--nobb-total-hits-first-only",
        action="store_true",
        help="NOBB x-totalHits only on a chain's first page",
    )
    g.add_argument(
        "--nobb-page-clamp",
        type=int,
        default=d.nobb_page_clamp,
        metavar="N",
        help="NOBB pageSize above N served N items, silently (0: 400 above 10000)",
    )
    g.add_argument(
        "--nobb-accepted",
        action="store_true",
        help="NOBB: the first ask of every page answers 202 Accepted, empty",
    )
    g.add_argument(
        "--nobb-token-from-issue",
        action="store_true",
        help="NOBB tokens die --token-ttl after their own issue, not the chain's start",
    )
    g.add_argument(
        "--nobb-expired-400",
        action="store_true",
        help="NOBB: an expired token answers 400 (as a garbage one), not page 1",
    )


def _add_dbk(g: argparse._ArgumentGroup, d: Readings) -> None:
    """The DBK API's readings: the cap, empty windows, the message, tokens, time formats."""
    g.add_argument(
        "--dbk-cap-answer",
        choices=get_args(CapAnswer),
        default=d.dbk_cap_answer,
        help="DBK answer over --dbk-max-products: cut off silently (default), 413 or "
        "400 problem+json stating the cap, or no cap at all",
    )
    g.add_argument(
        "--dbk-empty-200",
        action="store_true",
        help="DBK: an empty window answers 200 with <NoProduct/>, not 204",
    )
    g.add_argument(
        "--dbk-onix",
        choices=get_args(OnixRelease),
        default=d.dbk_onix,
        help="DBK message namespace and release: 3.1 (default), 3.0, none",
    )
    g.add_argument(
        "--dbk-datestamps",
        choices=get_args(Datestamps),
        default=d.dbk_datestamps,
        help="DBK Product datestamp: the update time (default), absent, or one old date for all",
    )
    g.add_argument(
        "--dbk-shuffle", action="store_true", help="DBK products in another order on each call"
    )
    g.add_argument(
        "--dbk-refresh-refuses",
        type=int,
        choices=(0, 401, 403),
        default=d.dbk_refresh_refuses,
        metavar="STATUS",
        help="DBK: the refresh endpoint refuses every token: 403 or 401 (0: no)",
    )
    g.add_argument(
        "--dbk-token-life",
        type=int,
        default=d.dbk_token_life,
        metavar="SECONDS",
        help="DBK JWT life unless expirationInSeconds asks another (default 1800)",
    )
    g.add_argument(
        "--dbk-rotate-key",
        type=float,
        default=d.dbk_rotate_key,
        metavar="SECONDS",
        help="DBK: a new JWT key every SECONDS, earlier tokens answer 401 (0: never)",
    )
    g.add_argument(
        "--dbk-basic-time-only",
        action="store_true",
        help="DBK: only 20250204T0930-0400 / 20250204T093000+0000 accepted; Z and "
        "extended times answer 400",
    )


def readings_from(args: argparse.Namespace) -> Readings:
    """The ``Readings`` of parsed flags (ValueError for out-of-range values)."""
    return Readings(**{name: getattr(args, name) for name in Readings.__dataclass_fields__})
