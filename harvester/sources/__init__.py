"""The two APIs as sources: what to ask for, in what order, and what a run records of it.

Owns the source protocol and a run's context (``base``), NOBB (``nobb``: token chains walked
from both ends, a catch-up; one run's walks and state in ``nobb_run``; the partitions a run
walks, and when to cut one, chosen by ``nobb_plan``; one page fetched by ``nobb_fetch``; a
partition cut by change date when its walk outlives its tokens by ``nobb_split``; the run's
cross-checks in ``nobb_checks``), DBK (``dbk``:
time windows that split when full; one run's windows and state in ``dbk_run``; fetched by
``dbk_fetch``, authenticated by ``dbk_auth``), and how a source reaches its API (``endpoint``:
HTTP settings, the certificate check before a run, ``Endpoint.send``, the one request path).

May import: ``plan``, ``engine``, ``store``, ``parse``, and ``harvester.errors``,
``harvester.plural``, ``harvester.logs``, ``harvester.config``, ``harvester.progress``. Never
``sim`` or the run layer (``app``, ``run``, ``status``, ``cli``).
"""
