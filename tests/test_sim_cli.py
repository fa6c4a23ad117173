"""`harvester simulate` as a process: one line on stdout, serves, exits 0 on SIGTERM and SIGINT."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request

import pytest


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_prints_one_line_serves_and_exits_0(sig: signal.Signals) -> None:
    """The process prints exactly `listening on http://127.0.0.1:PORT`, answers, and exits 0."""
    cmd = [sys.executable, "-m", "harvester", "simulate", "--port", "0", "--nobb-items", "100",
           "--dbk-products", "100"]  # fmt: skip
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.fullmatch(r"listening on (http://127\.0\.0\.1:(\d+))\n", line)
        assert m, line
        req = urllib.request.Request(m.group(1) + "/api/v2/items?pageSize=1")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=10)
        assert info.value.code == 401
        info.value.close()
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert out == ""


def test_bad_flag_value_exits_2() -> None:
    """An out-of-range setting is refused with exit 2 and a message naming it."""
    proc = subprocess.run(
        [sys.executable, "-m", "harvester", "simulate", "--port", "70000"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "port must be 0..65535" in proc.stderr
