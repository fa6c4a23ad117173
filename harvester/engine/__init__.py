"""The network engine: requests on the wire, their pace and their retries.

Owns HTTP (``http``: the only aiohttp client user; the request, the streamed response and the
client protocol in ``messages``; its settings in ``http_settings``, TLS contexts in ``tls``, body
decoders in ``decoders``, the ``Accept-Encoding`` offered in ``encoding``, what an answer's
status means in ``statuses``), rate limiting (``limiter``, the
pace it applies in ``ratepolicy``, the window the answers show in ``ratewindow``, the server's
rate headers in ``rateheaders``, the send log in ``ratelog``, the server clock skew in
``rateskew``; a quota only 429s show, learned in ``ratelearn`` from the window ends the
refusals name, kept in ``ratephase``, and our requests' arrivals, in ``ratearrivals``: the
window ``ratefit`` reads off them is paced by in ``ratepace``, else the adaptive rate of
``rateadaptive`` on the curve of ``ratecubic``), retries with backoff (``retry``),
bounded-concurrency task pools (``scheduler``) and time as a seam (``clock``).

May import: itself, ``harvester.errors``, ``harvester.plural``, ``harvester.logs``,
``harvester.config`` (setting values and parsers) and ``harvester.proxies``. Never ``sources``,
``plan``, ``store``, ``parse``, ``sim`` or the run layer (``app``, ``run``, ``status``, ``cli``).
"""
