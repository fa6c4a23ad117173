"""Helpers for tests over real TLS and through a real proxy: a throwaway CA, a proxy.py process.

``TlsFiles`` is a ``trustme`` CA and a server certificate for 127.0.0.1 / localhost / ::1,
written as PEM files. ``ProxyServer`` runs the ``proxy.py`` package as a child process on an
ephemeral port (read from its port file, then the socket polled until it accepts), logging to
a file from which ``connects()`` reads the CONNECT lines the proxy itself wrote; it is stopped
(its whole process group) and waited for on exit.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import trustme


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A throwaway CA (``ca_pem``) and the server's certificate chain and key (PEM files)."""

    ca_pem: Path
    cert_pem: Path
    key_pem: Path

    @classmethod
    def make(cls, directory: Path) -> TlsFiles:
        ca = trustme.CA(organization_name="harvester test CA")
        server = ca.issue_cert("127.0.0.1", "localhost", "::1")
        directory.mkdir(parents=True, exist_ok=True)
        files = cls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
        ca.cert_pem.write_to_path(str(files.ca_pem))
        server.private_key_pem.write_to_path(str(files.key_pem))
        files.cert_pem.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
        return files

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert_pem), str(self.key_pem))
        return context


def wait_for_port(port: int, *, deadline: float = 60.0, proc: subprocess.Popen[bytes]) -> None:
    """Poll 127.0.0.1:port until it accepts (or the process died, or ``deadline`` passed)."""
    end = time.monotonic() + deadline
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the proxy exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


class ProxyServer:
    """``proxy.py`` as a child process on an ephemeral loopback port; a context manager."""

    def __init__(self, workdir: Path, *, basic_auth: str | None = None) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "proxy.log"
        self._port_file = workdir / "proxy.port"
        self._basic_auth = basic_auth
        self._proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ProxyServer:
        argv = [sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", "0",
                "--port-file", str(self._port_file), "--num-acceptors", "1", "--num-workers", "1",
                "--log-level", "INFO", "--log-file", str(self.log_path), "--timeout", "120",
                "--inactive-conn-cleanup-timeout", "120"]  # fmt: skip
        if self._basic_auth is not None:
            argv += ["--basic-auth", self._basic_auth]
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        self._proc = subprocess.Popen(
            argv, cwd=self.workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            end = time.monotonic() + 60
            while not self._port_file.exists() or not self._port_file.read_text().strip():
                if self._proc.poll() is not None or time.monotonic() > end:
                    raise RuntimeError("proxy.py did not write its port file")
                time.sleep(0.05)
            self.port = int(self._port_file.read_text())
            wait_for_port(self.port, proc=self._proc)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the proxy and its workers (its own process group); idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                proc.wait()
        else:
            proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def lines(self, pattern: str, *, at_least: int = 1, deadline: float = 60.0) -> list[str]:
        """The proxy's own log lines matching ``pattern``, polled until ``at_least`` are there
        (proxy.py writes a connection's access line when that connection closes)."""
        regex = re.compile(pattern)
        end = time.monotonic() + deadline
        while True:
            found = [line for line in self.log().splitlines() if regex.search(line)]
            if len(found) >= at_least or time.monotonic() > end:
                return found
            time.sleep(0.05)

    def connects(self, *, port: int, at_least: int = 1, deadline: float = 60.0) -> list[str]:
        """The CONNECT lines to 127.0.0.1:port (see ``lines``)."""
        return self.lines(rf" - CONNECT 127\.0\.0\.1:{port} - ", at_least=at_least,
                          deadline=deadline)  # fmt: skip
