"""Output straight to s3://, against a real S3 server (SeaweedFS) on loopback: same guarantees."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks.seaweed import ACCESS_KEY, BUCKET, SECRET_KEY, SeaweedFS, weed_binary
from harvester.cli import main
from harvester.config_file import load_config
from harvester.errors import ConfigError, LockedError, OutputError
from harvester.output import latest_run, read_lines, verify_run
from harvester.store.storage import BucketDir, location, out_dir

pytest.importorskip("obstore", reason="obstore not installed: pip install 'harvester[s3]'")

from harvester.store.lease import LeaseLock
from harvester.store.objstore import Bucket
from tests.harness import simulate

NEEDLES = (ACCESS_KEY, SECRET_KEY)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One SeaweedFS for the module (skipped, with the reason, where weed cannot run)."""
    binary, why = weed_binary()
    if binary is None:
        pytest.skip(why)
    if os.environ.get("FAKETIME"):
        pytest.skip("faked clock: weed (Go) ignores LD_PRELOAD and refuses S3 requests dated by it")
    with SeaweedFS(tmp_path_factory.mktemp("seaweed"), binary) as server:
        yield server


@pytest.fixture
def prefix(s3: SeaweedFS, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh s3:// prefix for the test, with the AWS environment set in this process too."""
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    return s3.url(re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-"))


def _sim(items: int, seed: int, latency_ms: int = 20) -> tuple[subprocess.Popen[str], str]:
    flags = ("--nobb-items", str(items), "--seed", str(seed), "--latency-ms", str(latency_ms))
    return simulate(*flags, "--rate-limit", "0")


def _stop(sim: subprocess.Popen[str]) -> None:
    sim.terminate()
    sim.wait()
    assert sim.stdout is not None
    sim.stdout.close()


def _config(tmp: Path, url: str, out: str | Path, extra: str = "") -> Path:
    cfg = tmp / f"c{len(list(tmp.glob('c*.toml')))}.toml"
    cfg.write_text(
        f'[output]\ndir = "{out}"\nshard_max_records = 700\nlock_lease_seconds = 2\n{extra}'
        f'[nobb]\nbase_url = "{url}"\nusername = "harvester"\npassword = "harvester"\n'
        'rate_limit = "0"\npage_size = 100\nconcurrency = 4\npartitions = 6\nretries = 1\n'
    )
    return cfg


def _env(s3: SeaweedFS, tmp: Path) -> dict[str, str]:
    (tmp / "tmp").mkdir(exist_ok=True)
    return {**os.environ, **s3.env, "TMPDIR": str(tmp / "tmp")}


def _harvester(*args: str) -> list[str]:
    progress = ["--progress", "never"] if args[0] in ("dump", "sync") else []
    return [sys.executable, "-m", "harvester", *args, *progress]


def _run(s3: SeaweedFS, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_harvester(*args), capture_output=True, text=True, timeout=120,
                          env=_env(s3, tmp))  # fmt: skip


def _resume(s3: SeaweedFS, tmp: Path, cfg: Path) -> subprocess.CompletedProcess[str]:
    """``dump --resume``, again while the dead run's lease has not expired yet (exit 75)."""
    deadline = time.monotonic() + 60
    while True:
        done = _run(s3, tmp, "dump", "nobb", "--config", str(cfg), "--resume")
        if done.returncode != 75 or time.monotonic() > deadline:
            return done
        assert "lease until" in done.stderr, done.stderr
        time.sleep(0.2)  # poll interval while the 2 s lease runs out


def _objects(prefix: str) -> dict[str, bytes]:
    """Every object under the prefix, by key."""
    root = location(prefix)
    assert isinstance(root, BucketDir)
    found: dict[str, bytes] = {}

    def walk(where: BucketDir) -> None:
        dirs, files = where.entries()
        for name in files:
            found[f"{where.key}/{name}".lstrip("/")] = where.read(name) or b""
        for name in dirs:
            walk(where.child(name))

    walk(root)
    return found


def _keys(run: str | Path) -> list[int]:
    return [orjson.loads(line)["nobbNumber"] for line in read_lines(run)]


def _wait_checkpoint(prefix: str, proc: subprocess.Popen[Any], done: int) -> None:
    source = location(prefix) / "nobb"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        runs = source.entries()[0]
        raw = (source / runs[0]).read("checkpoint.json") if runs else None
        if raw is not None and len(orjson.loads(raw)["done"]) >= done:
            return
        time.sleep(0.02)
    raise AssertionError("no checkpoint with a finished partition appeared")


def test_dump_to_s3_holds_the_same_records_as_a_local_dump(
    s3: SeaweedFS, prefix: str, tmp_path: Path
) -> None:
    """A dump to s3:// equals the local dump record for record; status/read_run/verify_run work."""
    sim, url = _sim(3000, 11, latency_ms=0)
    try:
        local = _run(
            s3, tmp_path, "dump", "nobb", "--config", str(_config(tmp_path, url, tmp_path / "out"))
        )
        remote = _run(
            s3, tmp_path, "dump", "nobb", "--config", str(_config(tmp_path, url, prefix)), "-v"
        )
    finally:
        _stop(sim)
    assert local.returncode == 0, local.stderr
    assert remote.returncode == 0, remote.stderr
    run = latest_run(f"{prefix}/nobb")
    assert isinstance(run, str) and run.startswith(f"s3://{BUCKET}/")
    manifest = verify_run(run)
    assert manifest["complete"] is True and manifest["records"] == 3000
    local_run = latest_run(tmp_path / "out" / "nobb")
    assert local_run is not None
    assert sorted(read_lines(run)) == sorted(read_lines(local_run))
    assert len(set(_keys(run))) == 3000
    objects = _objects(prefix)
    names = {k.rsplit("/", 1)[-1] for k in objects}
    assert {"manifest.json", "checkpoint.json", "state.json"} <= names
    assert not [n for n in names if n.endswith(".tmp") or n == ".lock"]  # lock released
    assert not list((tmp_path / "tmp").iterdir())  # the local staging is gone
    for key, body in objects.items():
        assert not [n for n in NEEDLES if n.encode() in body], key
    assert not [n for n in NEEDLES if n in remote.stdout + remote.stderr]
    status = _run(s3, tmp_path, "status", "--out", prefix, "--json")
    assert status.returncode == 0, status.stderr
    (src,) = orjson.loads(status.stdout)["sources"]
    assert src["running"] is False and src["problems"] == []
    assert [(r["status"], r["records"]) for r in src["runs"]] == [("complete", 3000)]
    assert src["last_complete_run"]["records"] == 3000


def test_sync_reads_and_advances_state_json_in_the_bucket(
    s3: SeaweedFS, prefix: str, tmp_path: Path
) -> None:
    """sync starts from the dump's high-water mark in the bucket and advances state.json there."""
    sim, url = _sim(3000, 12, latency_ms=0)
    try:
        cfg = str(_config(tmp_path, url, prefix))
        assert _run(s3, tmp_path, "dump", "nobb", "--config", cfg).returncode == 0
        state = orjson.loads(location(prefix).child("nobb").read("state.json") or b"")
        assert state["last_complete_run"]["mode"] == "dump"
        sync = _run(s3, tmp_path, "sync", "nobb", "--config", cfg)
    finally:
        _stop(sim)
    assert sync.returncode == 0, sync.stderr
    after = orjson.loads(location(prefix).child("nobb").read("state.json") or b"")
    run = latest_run(f"{prefix}/nobb")
    assert isinstance(run, str)
    assert after["last_complete_run"] == {"run_id": run.rsplit("/", 1)[-1], "mode": "sync",
                                          "records": verify_run(run)["records"]}  # fmt: skip
    # It walked from the dump's high-water mark less the overlap, not the whole catalogue.
    since = date.fromisoformat(state["high_water"]) - timedelta(days=1)
    assert since.isoformat() in str(verify_run(run)["partitions"])
    assert after["last_complete_run"]["records"] < 3000 and after["high_water"]


def test_sigkill_then_resume_on_s3_gives_every_item_once(
    s3: SeaweedFS, prefix: str, tmp_path: Path
) -> None:
    """SIGKILL after a checkpoint, then --resume (after the lease) completes the same run."""
    sim, url = _sim(4000, 13, latency_ms=40)
    try:
        cfg = _config(tmp_path, url, prefix)
        with subprocess.Popen(_harvester("dump", "nobb", "--config", str(cfg), "-q"),
                              env=_env(s3, tmp_path)) as proc:  # fmt: skip
            _wait_checkpoint(prefix, proc, 1)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        (run_id,) = (location(prefix) / "nobb").entries()[0]
        done = _resume(s3, tmp_path, cfg)
    finally:
        _stop(sim)
    assert done.returncode == 0, done.stderr
    assert (location(prefix) / "nobb").entries()[0] == [run_id]  # resumed in place
    run = f"{prefix}/nobb/{run_id}"
    keys = _keys(run)
    assert len(keys) == len(set(keys)) == 4000
    assert verify_run(run)["complete"] is True


def test_store_killed_mid_run_ends_incomplete_then_resumes(
    s3: SeaweedFS, prefix: str, tmp_path: Path
) -> None:
    """The S3 server dies mid-run: exit 1, nothing half-listed; --resume after it is back: exact."""
    sim, url = _sim(4000, 14, latency_ms=40)
    try:
        cfg = _config(tmp_path, url, prefix, "store_retry_seconds = 2\n")
        with subprocess.Popen(_harvester("dump", "nobb", "--config", str(cfg), "-q"),
                              env=_env(s3, tmp_path), stderr=subprocess.PIPE,
                              text=True) as proc:  # fmt: skip
            _wait_checkpoint(prefix, proc, 1)
            s3.stop()
            try:
                _, stderr = proc.communicate(timeout=90)
            finally:
                s3.start()
        assert proc.returncode == 1, stderr
        assert f"s3://{BUCKET}/" in stderr and not [n for n in NEEDLES if n in stderr]
        (run_id,) = (location(prefix) / "nobb").entries()[0]
        run = location(f"{prefix}/nobb/{run_id}")
        assert run.read("manifest.json") is None  # incomplete: no manifest, resumable
        listed = orjson.loads(run.read("checkpoint.json") or b"")["shards"]
        for shard in listed:  # every listed shard is whole
            assert len(run.read(shard["path"]) or b"") == shard["bytes"]
        done = _resume(s3, tmp_path, cfg)
    finally:
        _stop(sim)
    assert done.returncode == 0, done.stderr
    keys = _keys(str(run))
    assert len(keys) == len(set(keys)) == 4000
    assert verify_run(str(run))["complete"] is True


def test_a_second_run_is_refused_while_the_lease_is_held(
    s3: SeaweedFS, prefix: str, tmp_path: Path
) -> None:
    """While another holder's lease is live a run exits 75 naming it, and status says running."""
    source = location(prefix) / "nobb"
    assert isinstance(source, BucketDir)
    cfg = _config(tmp_path, "http://127.0.0.1:9", prefix)
    with LeaseLock(source, lease_seconds=30) as held:
        done = _run(s3, tmp_path, "dump", "nobb", "--config", str(cfg))
        status = _run(s3, tmp_path, "status", "--out", prefix, "--json")
    assert done.returncode == 75, done.stderr
    assert held.holder in done.stderr and f"{source}/.lock" in done.stderr
    (src,) = orjson.loads(status.stdout)["sources"]
    assert src["running"] is True and src["lock_holder"] == held.holder
    assert source.read(".lock") is None  # released on exit


def test_a_second_concurrent_run_exits_75_naming_the_first(
    s3: SeaweedFS, prefix: str, tmp_path: Path
) -> None:
    """While one dump runs on the prefix, a second one exits 75 at once, naming the first."""
    sim, url = _sim(4000, 15, latency_ms=500)  # slow pages: the first run lasts seconds
    lock = location(prefix) / "nobb"
    try:
        cfg = _config(tmp_path, url, prefix)
        with subprocess.Popen(_harvester("dump", "nobb", "--config", str(cfg), "-q"),
                              env=_env(s3, tmp_path)) as first:  # fmt: skip
            deadline = time.monotonic() + 60
            while lock.read(".lock") is None and first.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            second = _run(s3, tmp_path, "dump", "nobb", "--config", str(cfg))
            running = first.poll() is None
            first.send_signal(signal.SIGTERM)
            first.wait()
    finally:
        _stop(sim)
    assert running, "the first run ended before the second started"
    assert second.returncode == 75, second.stderr
    assert f"is held by pid {first.pid} on " in second.stderr
    assert first.returncode == 130 and lock.read(".lock") is None  # drained, lock released


def test_an_expired_lease_is_taken_over_and_its_old_holder_stops(prefix: str) -> None:
    """A lock whose lease expired is taken over; the holder that lost it can write no more."""

    def source() -> BucketDir:  # a client of its own per holder, as in separate processes
        where = location(prefix) / "nobb"
        assert isinstance(where, BucketDir)
        return where

    first = LeaseLock(source(), lease_seconds=1)
    first.__enter__()
    try:
        source().write(".lock", orjson.dumps({"holder": "a dead run", "expires": 1.0}))
        with pytest.raises(OutputError, match="lost the run lock"):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # its next renewal finds the lock replaced
                first.check()
                time.sleep(0.05)
        with LeaseLock(source(), lease_seconds=30) as second:
            body = orjson.loads(source().read(".lock") or b"")
            assert body["token"] == second.token
            with pytest.raises(LockedError, match="is held by"):
                LeaseLock(source(), lease_seconds=30).__enter__()
    finally:
        first.__exit__(None, None, None)


def test_the_store_url_and_endpoint_are_checked_at_the_edge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only s3://bucket/prefix is accepted, and plain http only to a loopback endpoint."""
    (tmp_path / "c.toml").write_text('[output]\ndir = "gs://b/p"\n')
    with pytest.raises(ConfigError, match="only URLs supported are s3://"):
        load_config(tmp_path / "c.toml")
    assert main(["dump", "nobb", "--config", "c.toml", "--out", "s3://b/a/../c"]) == 2
    assert "'s3://b/a/../c': empty, '.' or '..' path segment" in capsys.readouterr().err
    assert out_dir("s3://b/a/b/") == "s3://b/a/b" and out_dir("out") == Path("out")
    for bad in ("gs://b/p", "s3:///p", "s3://b/a//c", "s3://b/../c", "s3://u@b/p"):
        with pytest.raises(ConfigError):
            out_dir(bad)
    with pytest.raises(ConfigError, match="only to loopback"):
        Bucket("s3://b/p", env={"AWS_ENDPOINT_URL": "http://s3.example.com"})
    Bucket("s3://b/p", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9000"})
    Bucket("s3://b/p", env={"AWS_ENDPOINT_URL": "https://s3.example.com"})


def test_refused_credentials_are_an_error_that_does_not_quote_them(
    s3: SeaweedFS, prefix: str, tmp_path: Path
) -> None:
    """A key the store does not know: exit 1 naming the URL; the key appears nowhere."""
    bad = "AKIANOTAREALKEY00042"
    cfg = _config(tmp_path, "http://127.0.0.1:9", prefix, "store_retry_seconds = 1\n")
    env = {**_env(s3, tmp_path), "AWS_ACCESS_KEY_ID": bad}
    done = subprocess.run(_harvester("dump", "nobb", "--config", str(cfg)), capture_output=True,
                          text=True, timeout=60, env=env)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"{prefix}/nobb/.lock" in done.stderr
    assert bad not in done.stderr + done.stdout and SECRET_KEY not in done.stderr
    assert _objects(prefix) == {}


def test_sigkill_mid_compaction_then_resume_on_s3(
    s3: SeaweedFS, prefix: str, tmp_path: Path
) -> None:
    """compact into s3://: SIGKILL with lines merged, --resume after the lease: the same run,
    equal to the dump; current.json in the bucket names it."""
    sim, url = _sim(6000, 31, latency_ms=0)
    try:
        cfg = _config(tmp_path, url, prefix, "checkpoint_seconds = 0.001\n")
        dumped = _run(s3, tmp_path, "dump", "nobb", "--config", str(cfg), "-q")
        assert dumped.returncode == 0, dumped.stderr
    finally:
        _stop(sim)
    source = location(prefix) / "nobb"
    (dump_id,) = source.entries()[0]
    with subprocess.Popen(_harvester("compact", "nobb", "--config", str(cfg), "-q"),
                          env=_env(s3, tmp_path)) as proc:  # fmt: skip
        deadline = time.monotonic() + 60
        killed = None
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            for run_id in source.entries()[0]:
                raw = (source / run_id).read("checkpoint.json")
                cp = orjson.loads(raw) if raw else {}
                if cp.get("mode") == "snapshot" and cp.get("positions", {}).get("visited"):
                    killed = run_id
            time.sleep(0.01)  # polling the bucket for the snapshot's checkpoint
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert killed is not None, "the compaction ended before a checkpoint listed merged lines"
    assert source.read("current.json") is None
    deadline = time.monotonic() + 60
    while True:
        done = _run(s3, tmp_path, "compact", "nobb", "--config", str(cfg), "--resume")
        if done.returncode != 75 or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # poll interval while the killed run's 2 s lease runs out
    assert done.returncode == 0, done.stderr
    assert sorted(source.entries()[0]) == sorted([dump_id, killed])
    assert orjson.loads(source.read("current.json") or b"{}")["run_id"] == killed
    snapshot = f"{prefix}/nobb/{killed}"
    assert verify_run(snapshot)["mode"] == "snapshot"
    assert sorted(read_lines(snapshot)) == sorted(read_lines(f"{prefix}/nobb/{dump_id}"))
