"""Parsing what the APIs send: NOBB items and DBK's ONIX 3.1, both untrusted input.

Owns NOBB's streaming page splitter (``nobb``: each item as served, with its key and change
date, as ``nobb_items``), ONIX cut at product boundaries as bytes arrive (``onix_split``:
DOCTYPE and ENTITY refused, bounded element size), each product converted to JSON by a hardened
parser (``onix``, its field rules in ``onix_fields``, tag tables in ``onix_tags``, the walk of
lxml's tree in ``onix_walk``, products of a known shape built from their bytes by
``onix_shapes`` with code from ``onix_shape_code``, which calls ``onix_shape_calls`` as it
runs) in the main process and worker processes (``onix_pool``; a worker's initializer and task
in ``onix_worker``), and JSON back to ONIX XML
(``onix_xml.to_xml``). The only lxml users are here.

May import: itself and ``harvester.errors``. Never ``engine``, ``store``, ``plan``, ``sources``,
``sim`` or the run layer (``app``, ``run``, ``status``, ``cli``).
"""
