"""Planning: how a harvest is cut into pieces and walked, as rules and data that do no I/O.

Every module is pure but one: ``partitions.plan`` is a coroutine, since it awaits the
``x-totalHits`` probes its caller passes in (the caller makes the requests) level by level,
each level at once under ``engine.scheduler.gather_all``.

Owns NOBB's token-chain pagination (``walk``: pages; ``seam``: which end claims which
key; ``token_chain``: the guards against a chain going round; ``page_headers``: the forward
token and total hits read off a page), the positions a resume
continues from (``positions``), NOBB's date partitions (``partitions``) and how long one token
chain may run (``walk_budget``), DBK's time windows that split when full (``windows``) and the
density they learn from an earlier run (``density``), and how
each API reads the ends of a range (``edges``).

May import: itself, ``harvester.errors`` and ``harvester.engine.scheduler`` (partition probes run
under one TaskGroup). Never ``store``, ``sources``, ``parse``, ``sim`` or the run layer (``app``,
``run``, ``status``, ``cli``).
"""
