"""The simulator: both APIs served on loopback, deterministic from a seed and an injected now.

Owns the server (``server.Simulator``, plain HTTP or TLS) and the state its routes share
(``context``), NOBB's routes (``nobb``), how a request's parameters and tokens read
(``nobb_query``), its catalogue (``catalogue``) and what one item holds
(``items``), DBK's routes (``dbk``), the filters its export reads (``dbk_filters``) and books
(``books``, each product's ONIX drawn in ``onix_template``), rate limits under every policy the
docs leave open (``ratelimit``), opt-in faults (``faults``), answers on the wire (``wire``:
latency, encodings, faults in the body), its settings (``settings``), the other readings of
the docs' open points, each a switch off by default (``readings``) and the ``harvester simulate``
command line (``cli``).

May import: itself only; never the client side (checked by ``tests/test_packaging.py``).
"""
