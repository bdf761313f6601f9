"""A short, bounded run of every fuzz harness in fuzz/, so CI keeps them working and honest.

Each harness's `test_one_input` gets (a) its committed seed corpus, (b) a few hundred inputs
mutated from those seeds by a seeded `random.Random` (so a failure reproduces), and (c) when
atheris is installed, a real coverage-guided run of a fixed number of inputs per harness in a
subprocess. That run is judged by what the fuzzer reports (all its runs done, nothing found),
never by how long it took: a busy machine only makes it slower. Long runs are for people:
`python fuzz/fuzz_frames.py fuzz/corpus/frames`.
"""

from __future__ import annotations

import base64
import importlib
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from weex_proto.errors import WeexError
from weex_proto.events import Connected, ConnectionRejected
from weex_proto.messages import DepthUpdate, parse_push
from weex_proto.orderbook import Applied, OrderBook

FUZZ_DIR = Path(__file__).resolve().parent.parent / "fuzz"
HARNESSES = ("handshake", "frames", "json", "depth", "stack")
MUTATIONS_PER_HARNESS = 1500
SECONDS_PER_HARNESS = 1.5  # a bound on the loop, not an assertion: slow machines run fewer
INTERESTING = b'\x00\x01\x7e\x7f\x80\x81\x88\x89\x8a\xff{}[]",:\n\r 0-9eE'
ATHERIS_RUNS = 2000
RUNS_OF = {"stack": 1000}
"""Runs of a harness whose every input is costlier (fuzz_stack drives two whole stacks, a v2 and
a v3 one, per input: 1000 inputs are 2000 stack runs)."""
HANG_GUARD = 600.0
"""Seconds after which a fuzzer subprocess is taken to hang and is killed: a guard, far beyond
any slow machine, not a budget (the test is judged by the runs the fuzzer reports done)."""


def harness(name: str) -> ModuleType:
    """Import a harness the way its script does: with fuzz/ first on the path."""
    if str(FUZZ_DIR) not in sys.path:
        sys.path.insert(0, str(FUZZ_DIR))
    return importlib.import_module(name)


def seeds(name: str) -> list[bytes]:
    return [path.read_bytes() for path in sorted((FUZZ_DIR / "corpus" / name).iterdir())]


def mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    """One libFuzzer-style mutation: flip, overwrite, insert, delete, repeat or splice."""
    buffer = bytearray(data)
    where = rng.randrange(len(buffer) + 1)
    kind = rng.randrange(7)
    if kind == 0 and buffer:
        buffer[min(where, len(buffer) - 1)] ^= 1 << rng.randrange(8)
    elif kind == 1 and buffer:
        buffer[min(where, len(buffer) - 1)] = rng.choice(INTERESTING)
    elif kind == 2:
        buffer[where:where] = rng.randbytes(rng.randrange(1, 9))
    elif kind == 3:
        del buffer[where : where + rng.randrange(1, 33)]
    elif kind == 4:
        buffer[where:where] = buffer[where : where + rng.randrange(1, 65)] * rng.randrange(1, 4)
    elif kind == 5:
        other = rng.choice(corpus)
        start = rng.randrange(len(other) + 1)
        buffer[where:where] = other[start : start + rng.randrange(1, 200)]
    else:
        del buffer[where:]
    return bytes(buffer)


@pytest.mark.parametrize("name", HARNESSES)
def test_seed_corpus_passes(name: str) -> None:
    corpus = seeds(name)
    assert len(corpus) >= 4
    for seed in corpus:
        harness(f"fuzz_{name}").test_one_input(seed)


@pytest.mark.parametrize("name", HARNESSES)
def test_mutated_seeds_pass(name: str) -> None:
    target = harness(f"fuzz_{name}").test_one_input
    corpus = seeds(name)
    rng = random.Random(f"fuzz-smoke/{name}")
    stop = time.monotonic() + SECONDS_PER_HARNESS
    for _ in range(MUTATIONS_PER_HARNESS):
        data = rng.choice(corpus)
        for _ in range(rng.randrange(1, 5)):
            data = mutate(rng, data, corpus)
        try:
            target(data)
        except BaseException as exc:
            reproduce = base64.b64encode(data).decode()
            raise AssertionError(f"fuzz_{name} failed on base64 input {reproduce}") from exc
        if time.monotonic() > stop:
            break


def fuzzer_command(name: str, tmp_path: Path, runs: int) -> list[str]:
    corpus = tmp_path / name  # libFuzzer adds what it finds to its first corpus directory
    shutil.copytree(FUZZ_DIR / "corpus" / name, corpus)
    return [
        sys.executable,
        str(FUZZ_DIR / f"fuzz_{name}.py"),
        str(corpus),
        f"-atheris_runs={runs}",
        f"-artifact_prefix={tmp_path}/{name}-",
    ]


def run_fuzzers(commands: dict[str, list[str]], cwd: Path) -> dict[str, int]:
    """Run the fuzzers side by side to their ends, each one's output in `cwd/<name>.log`;
    returns their exit statuses.

    Every process is reaped whatever happens: after a hang (past `HANG_GUARD`), an error or an
    interrupt the ones still running are killed and waited for, and output goes to files, not
    pipes, so no fuzzer outlives the test or leaves a ResourceWarning for a later one.
    """
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, command in commands.items():
            with (cwd / f"{name}.log").open("wb") as output:  # the child keeps its own copy
                processes[name] = subprocess.Popen(  # noqa: S603 - our own scripts
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    cwd=cwd,
                )
        deadline = time.monotonic() + HANG_GUARD
        return {
            name: process.wait(timeout=max(0.0, deadline - time.monotonic()))
            for name, process in processes.items()
        }
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
            process.wait()


def test_atheris_runs_each_harness(tmp_path: Path) -> None:
    pytest.importorskip(
        "atheris",
        reason="atheris (extra 'fuzz') is not installed, so the coverage-guided runs are "
        "skipped; the seed and mutation runs above did run",
    )
    runs = {name: RUNS_OF.get(name, ATHERIS_RUNS) for name in HARNESSES}
    commands = {name: fuzzer_command(name, tmp_path, runs[name]) for name in HARNESSES}
    failures = []
    for name, status in run_fuzzers(commands, tmp_path).items():
        tail = (tmp_path / f"{name}.log").read_bytes().decode(errors="replace")[-3000:]
        if status != 0:
            failures.append(f"fuzz_{name} found a failure (exit {status}):\n{tail}")
        elif f"Done {runs[name]} in" not in tail and f"Done {runs[name]} runs" not in tail:
            failures.append(f"fuzz_{name} did not report {runs[name]} runs:\n{tail}")
    assert not failures, "\n\n".join(failures)


def test_a_hanging_fuzzer_is_killed_and_every_one_is_reaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[subprocess.Popen[bytes]] = []
    popen = subprocess.Popen

    def recording_popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        process = popen(*args, **kwargs)
        started.append(process)
        return process

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    # The guard is a hang guard, not a budget: the process that ends is `true`, with no
    # interpreter to start, so even a loaded machine runs it well within the guard.
    monkeypatch.setattr(sys.modules[__name__], "HANG_GUARD", 3.0)
    commands = {
        "hangs": [sys.executable, "-c", "import time; time.sleep(600)"],
        "ends": [shutil.which("true") or "/bin/true"],
    }
    with pytest.raises(subprocess.TimeoutExpired):
        run_fuzzers(commands, tmp_path)
    assert len(started) == 2
    assert [process.returncode for process in started] == [-signal.SIGKILL, 0]


# ------------------------------------------------------------------ the seeds are what they say


def test_handshake_seeds_open_and_refuse_as_a_server_would() -> None:
    support = harness("_support")
    corpus = FUZZ_DIR / "corpus" / "handshake"
    outcomes = {}
    for seed in ("101_accept.http", "101_then_frames.http", "403_json.http", "503_empty.http"):
        conn, request = support.start_connection()
        data = (corpus / seed).read_bytes()
        conn.receive_data(data.replace(b"{ACCEPT}", support.accept_value(request)), 0.0)
        outcomes[seed] = [
            type(e) for e in conn.events() if isinstance(e, Connected | ConnectionRejected)
        ]
    assert outcomes == {
        "101_accept.http": [Connected],
        "101_then_frames.http": [Connected],
        "403_json.http": [ConnectionRejected],
        "503_empty.http": [ConnectionRejected],
    }


def test_non_ascii_header_in_the_101_closes_instead_of_raising() -> None:
    """Found by fuzz_handshake: wsproto let a UnicodeDecodeError out of the handshake."""
    support = harness("_support")
    conn, request = support.start_connection()
    data = FUZZ_DIR / "corpus" / "handshake" / "crash_non_ascii_connection_header.http"
    conn.receive_data(data.read_bytes().replace(b"{ACCEPT}", support.accept_value(request)), 0.0)
    [closed] = list(conn.events())
    assert closed.reason == "invalid handshake response: a header is not ASCII"


def test_json_seeds_of_pushes_parse_cleanly() -> None:
    corpus = FUZZ_DIR / "corpus" / "json"
    pushes = [p for p in sorted(corpus.glob("*.json"))]
    assert len(pushes) >= 8
    for path in pushes:
        assert parse_push(json.loads(path.read_bytes())), path.name


def test_depth_seed_is_a_snapshot_and_the_documented_delta() -> None:
    lines = (FUZZ_DIR / "corpus" / "depth" / "snapshot_then_doc_delta.jsonl").read_bytes()
    book = OrderBook("cmt_btcusdt", 15)
    results = []
    for line in lines.splitlines():
        for update in parse_push(json.loads(line)):
            assert isinstance(update, DepthUpdate)
            results.append(book.apply(update))
    assert results == [Applied(), Applied()]
    assert book.version == 3644174270


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_the_stack_harness_server_answers_in_the_stacks_dialect(api: str) -> None:
    """fuzz_stack's scripted server acks what each connection asked, in its dialect (v3 by
    the request's id), so every stream is served and the book goes live on its snapshot."""
    support, fuzz_stack = harness("_support"), harness("fuzz_stack")
    stack = fuzz_stack.Stack(support.V3_CONFIG if api == "v3" else support.CONFIG)
    for index in range(2):
        stack.choose(index)
        stack.answer(False, True)
    stack.answer(True, True)
    for channel in stack.hub.subscriptions:
        session = stack.hub.connections.holder(channel)
        assert channel in session.subscriptions.active, channel
    feed = stack.hub.books.feeds[fuzz_stack.BOOK_CHANNEL]
    assert feed.live
    stack.delta(0)  # the next versions, in the dialect's words
    assert feed.live and feed.book.version == stack.server_version
    stack.finish()


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_the_stack_harness_refuses_a_pending_subscribe_in_the_stacks_dialect(api: str) -> None:
    """An `E` step refuses a channel's pending subscribe (v3: its request's id): its stream ends
    with the server's error; refusing a channel nobody asked for ends nothing."""
    support, fuzz_stack = harness("_support"), harness("fuzz_stack")
    stack = fuzz_stack.Stack(support.V3_CONFIG if api == "v3" else support.CONFIG)
    stack.choose(1)
    book = next(b for plan, b in stack.streams if plan.channels == (fuzz_stack.BOOK_CHANNEL,))
    stack.error(False, stack.channels.index("ticker.cmt_nobodyusdt"))
    assert not book.closed
    stack.error(False, stack.channels.index(fuzz_stack.BOOK_CHANNEL))
    assert book.closed
    with pytest.raises(WeexError, match=r"refused|INVALID_ARGUMENT"):
        book.get()
    stack.finish()
