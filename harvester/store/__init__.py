"""Durable output: records written once each into sharded NDJSON, and read back verified.

Owns the run directory's commit protocol (``run_state``: open or resume, checkpoints, manifest
and ``state.json``, in crash-safe order; ``state_file``: state.json read, or rebuilt), the shard
sink (``sink``: exactly-once by key via ``keyset``, compressed by ``compress``, each shard
written by ``shard_writer``), the manifest
and the shards it lists (``manifest``), resume checkpoints (``checkpoint``), the snapshot merge
of ``harvester compact`` (``merge``, its inputs chosen by ``merge_inputs``), newer versions met
by a catch-up (``latest``), the run lock (``lock``; in a bucket the lease lock of ``lease``),
where output lives (``storage``: a local directory or a bucket prefix, the bucket through
``objstore``, the only obstore user; an ``s3://`` URL taken apart by ``s3url``) and the reader
(``output``, re-exported at its documented path ``harvester.output``).

May import: itself, ``harvester.errors``, ``harvester.plural``, ``harvester.config`` (setting
values and parsers) and the package version. Never ``engine``, ``plan``, ``sources``, ``parse``,
``sim`` or the run layer (``app``, ``run``, ``status``, ``cli``).
"""
