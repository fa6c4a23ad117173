"""docs/ and README: examples run as written, command lines parse, TOML validates, keys listed."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest
import trustme

from harvester.cli import build_parser
from harvester.config import DbkConfig, NobbConfig, OutputConfig
from harvester.config_file import parse_config
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from tests.harness import dump_nobb

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
INVOCATION = re.compile(r"(?:^|[\s/])harvester\s+(?:demo|dump|sync|status|simulate)\b")
SHELL_STOP = (";", "&&", "||", "|", "&")


def _blocks(text: str, lang: str | None = None) -> list[str]:
    """The fenced code blocks of a markdown text (of one language, if given)."""
    return [body for tag, body in FENCE.findall(text) if lang is None or tag == lang]


def _inline(text: str) -> list[str]:
    """The inline code spans outside fenced blocks, whitespace collapsed."""
    prose = FENCE.sub("", text)
    return [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)]


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {"": parser, **sub.choices}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def _invocations(block: str) -> list[list[str]]:
    """Each `harvester COMMAND ...` in a shell block, as its argv (up to a shell operator)."""
    found = []
    for line in block.replace("\\\n", " ").splitlines():
        if not INVOCATION.search(line):
            continue
        tokens = shlex.split(line, comments=True)
        start = next(i for i, t in enumerate(tokens) if os.path.basename(t) == "harvester")
        argv: list[str] = []
        for token in tokens[start + 1 :]:
            if token in SHELL_STOP or token.startswith((">", "2>", "<")):
                break
            argv.append(token)
        found.append(argv)
    return found


async def test_output_python_example_reads_a_real_dump(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The docs/output.md example using harvester.output runs as written against a real dump."""
    (code,) = [b for b in _blocks((DOCS / "output.md").read_text(), "python")
               if "harvester.output" in b]  # fmt: skip
    async with Simulator(SimSettings(nobb_items=1200, rate_limit=0, seed=41)) as sim:
        result = await dump_nobb(sim, tmp_path / "out")
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/output.md", "exec"), {"__name__": "docs_example"})
    run = result.run_dir.name
    assert capsys.readouterr().out == f"{run}: 1200 records, the manifest says 1200\n"


def test_cron_commands_parse_with_the_documented_flags() -> None:
    """Every `harvester ...` line in docs/cron.md's code blocks is accepted by the CLI parser."""
    text = (DOCS / "cron.md").read_text()
    argvs = [argv for block in _blocks(text) for argv in _invocations(block)]
    assert len(argvs) >= 3
    for argv in argvs:
        build_parser().parse_args(argv)  # a bad flag raises ConfigError (exit 2)
    syncs = [a for a in argvs if a[:2] == ["sync", "nobb"]]
    assert syncs and all({"--resume", "--summary-json", "-q"} <= set(a) for a in syncs)


@pytest.mark.parametrize("doc", ["cron.md", "config.md", "exit-codes.md", "output.md",
                                 "progress.md", "simulator.md", "../README.md"])  # fmt: skip
def test_every_flag_in_the_docs_exists(doc: str) -> None:
    """Each flag in a doc's inline code and command lines exists on the command it belongs to."""
    text = (DOCS / doc).read_text()
    commands = _commands()
    anywhere = set().union(*(_options(p) for p in commands.values()))
    for argv in [a for block in _blocks(text) for a in _invocations(block)]:
        build_parser().parse_args(argv)
    for span in _inline(text):
        tokens = span.split()
        if tokens[0] == "harvester" and len(tokens) > 1:
            command = tokens[1] if tokens[1] in commands else ""
            flags = [t.split("=")[0] for t in tokens[1:] if t.startswith("-")]
            assert set(flags) <= _options(commands[command]), span
        elif re.fullmatch(r"--?[a-z][\w-]*", tokens[0]):
            assert tokens[0] in anywhere, span


def test_toml_examples_are_valid_configs(tmp_path: Path) -> None:
    """Every TOML block in docs/ is a config that load-time validation accepts."""
    secret = tmp_path / "secret"
    secret.write_text("pw\n")
    secret.chmod(0o600)
    env = {"NOBB_USERNAME": "u", "NOBB_PASSWORD": "p", "DBK_USERNAME": "u", "DBK_PASSWORD": "p"}
    ca = tmp_path / "ca.pem"  # a real CA bundle wherever an example names one (ca_file)
    trustme.CA().cert_pem.write_to_path(str(ca))
    blocks = [b for doc in sorted(DOCS.glob("*.md")) for b in _blocks(doc.read_text(), "toml")]
    assert len(blocks) >= 2
    for block in blocks:
        block = re.sub(r'(ca_file = )"[^"]+"', rf'\1"{ca}"', block)
        raw = tomllib.loads(re.sub(r"/etc/harvester/\w+\.secret", str(secret), block))
        parse_config(raw, env)


def test_config_doc_lists_every_key_per_section() -> None:
    """docs/config.md has a table row for every key each config section accepts."""
    text = (DOCS / "config.md").read_text()
    sections = dict(re.findall(r"^## `\[(\w+)\]`.*?\n(.*?)(?=^## |\Z)", text, re.M | re.S))
    for name, cls in (("output", OutputConfig), ("nobb", NobbConfig), ("dbk", DbkConfig)):
        keys = {f.name for f in fields(cls)} | ({"password_file"} if name != "output" else set())
        documented = set(re.findall(r"^\| `(\w+)` \|", sections[name], re.M))
        assert documented == keys, name
