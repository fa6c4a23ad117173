"""obstore against fsspec/s3fs on what the output code asks of a store, on the same server.

Two workloads, each run with both libraries on the same SeaweedFS, interleaved:

- ``shards``: upload ``files`` local files of ``mb`` MB (incompressible bytes, like a gzip shard)
  the way the sink does (one at a time from the writer thread, multipart above 8 MiB): MB/s;
- ``small``: ``n`` PUT-then-GET of a 4 KB JSON object (checkpoint.json, state.json, the lock):
  operations per second.

obstore: ``obstore.put`` with a file path (streaming multipart) and bytes; s3fs:
``S3FileSystem.put_file`` / ``pipe_file`` / ``cat_file`` (its synchronous wrappers, as the
writer thread would call them).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.seaweed import BUCKET, SeaweedFS

__all__ = ["compare"]


def _obstore(
    server: SeaweedFS,
) -> tuple[Callable[[str, Path], None], Callable[[str, bytes], bytes]]:
    import obstore
    from obstore.store import S3Store

    store = S3Store(BUCKET, endpoint=server.endpoint, region="us-east-1",
                    access_key_id=server.env["AWS_ACCESS_KEY_ID"],
                    secret_access_key=server.env["AWS_SECRET_ACCESS_KEY"],
                    client_options={"allow_http": True})  # fmt: skip

    def upload(key: str, path: Path) -> None:
        obstore.put(store, key, path, chunk_size=8 << 20, max_concurrency=4)

    def small(key: str, data: bytes) -> bytes:
        obstore.put(store, key, data, use_multipart=False)
        return bytes(obstore.get(store, key).bytes())

    return upload, small


def _s3fs(server: SeaweedFS) -> tuple[Callable[[str, Path], None], Callable[[str, bytes], bytes]]:
    import s3fs

    fs = s3fs.S3FileSystem(key=server.env["AWS_ACCESS_KEY_ID"],
                           secret=server.env["AWS_SECRET_ACCESS_KEY"],
                           client_kwargs={"endpoint_url": server.endpoint,
                                          "region_name": "us-east-1"})  # fmt: skip

    def upload(key: str, path: Path) -> None:
        fs.put_file(str(path), f"{BUCKET}/{key}", chunksize=8 << 20)

    def small(key: str, data: bytes) -> bytes:
        fs.pipe_file(f"{BUCKET}/{key}", data)
        return bytes(fs.cat_file(f"{BUCKET}/{key}"))

    return upload, small


def compare(server: SeaweedFS, tmp: Path, *, files: int, mb: int, n: int,
            rounds: int) -> dict[str, Any]:  # fmt: skip
    """MB/s of shard uploads and ops/s of small PUT+GET, for obstore and s3fs (medians)."""
    shards = []
    for i in range(files):
        path = tmp / f"shard-{i}.bin"
        path.write_bytes(os.urandom(mb << 20))
        shards.append(path)
    body = b'{"shards": [' + b'{"path": "part-00000.ndjson.gz"},' * 120 + b"{}]}"
    libs = {"obstore": _obstore(server), "s3fs": _s3fs(server)}
    out: dict[str, dict[str, list[float]]] = {name: {"MB/s": [], "ops/s": []} for name in libs}
    for _ in range(max(1, rounds)):
        for name, (upload, small) in libs.items():
            run = f"compare/{name}/{uuid.uuid4().hex}"
            t = time.perf_counter()
            for i, path in enumerate(shards):
                upload(f"{run}/part-{i:05d}", path)
            out[name]["MB/s"].append(files * mb * 1.048576 / (time.perf_counter() - t))
            t = time.perf_counter()
            for i in range(n):
                assert small(f"{run}/small-{i % 4}.json", body) == body
            out[name]["ops/s"].append(n / (time.perf_counter() - t))
    return {
        name: {k: sorted(v)[len(v) // 2] for k, v in figs.items()} for name, figs in out.items()
    }
