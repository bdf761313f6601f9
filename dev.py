#!/usr/bin/env python3
"""One entry point for people and CI: sets up `.venv`, then runs the demo or the checks.

Only the standard library is used here, because this file runs before anything is installed.

    python3 dev.py demo [ARGS...]          live dashboard (embedded simulator; --live for WEEX)
    python3 dev.py test [PYTEST ARGS...]   ruff, mypy --strict, then the whole pytest suite
    python3 dev.py setup                   only what `test` installs (every example runs after it)

`demo` installs only what the client needs at run time (wsproto, attrs, anyio) and runs it from
this source tree; `test` and `setup` install the package in editable mode with the development
tools (they include everything `examples/` imports). Each installs once, and again only when
pyproject.toml changes. pip's output is shown only when it fails. Ctrl-C ends either with exit
code 130 and no traceback. Everything either writes stays in `.venv/`: bytecode
(`PYTHONPYCACHEPREFIX`), and the caches of mypy, ruff and hypothesis (pyproject.toml,
tests/conftest.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".weex-ws-installed"
INTERRUPTED = 130


def _venv_python() -> Path:
    scripts = "Scripts" if os.name == "nt" else "bin"
    return VENV / scripts / ("python.exe" if os.name == "nt" else "python")


def _metadata() -> dict[str, Any]:
    import tomllib  # here, so Python 3.10 still gets the version message below

    with (ROOT / "pyproject.toml").open("rb") as file:
        project: dict[str, Any] = tomllib.load(file)["project"]
    return project


def _installed() -> set[str]:
    """What the stamp says is installed for this pyproject.toml and Python ("demo", "dev")."""
    try:
        stamp = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return set()
    if not isinstance(stamp, dict) or stamp.get("for") != _fingerprint():
        return set()
    return set(stamp.get("installed", []))


def _fingerprint() -> str:
    """Reinstall whenever the project's metadata changes (new dependency, new script)."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return f"{sys.version_info[0]}.{sys.version_info[1]}:{digest}"


def _pip(python: Path, what: str, args: list[str]) -> None:
    """`pip install ARGS` with one progress line; pip's own output only if it fails."""
    print(f"dev.py: installing {what} into {VENV.name}/ ...", end=" ", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:
        code = subprocess.call(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        if code:
            print("failed", flush=True)
            log.seek(0)
            sys.stderr.write(log.read())
            raise SystemExit(f"dev.py: pip failed with exit code {code} (its output is above)")
    print(f"done ({time.monotonic() - started:.0f} s)", flush=True)


def ensure_venv(level: str) -> Path:
    """`.venv` with what `level` needs: "demo" (run-time dependencies) or "dev" (everything)."""
    if sys.version_info < (3, 11):
        sys.exit(f"weex-ws needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    python = _venv_python()
    if not python.exists():
        print(f"dev.py: creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    installed = _installed()
    if level in installed or (level == "demo" and "dev" in installed):
        return python
    if level == "demo":
        dependencies = list(_metadata()["dependencies"])
        names = ", ".join(re.split(r"[^A-Za-z0-9_.-]", dep, maxsplit=1)[0] for dep in dependencies)
        _pip(python, f"the demo's dependencies ({names})", dependencies)
    else:
        _pip(python, "weex-ws and its development tools", ["-e", f"{ROOT}[dev]"])
    STAMP.write_text(json.dumps({"for": _fingerprint(), "installed": sorted({*installed, level})}))
    return python


def _child_env() -> dict[str, str]:
    """The environment of what dev.py runs: Python's bytecode goes into `.venv/` rather than
    a `__pycache__/` beside every module (unless the caller chose a place)."""
    env = dict(os.environ)
    env.setdefault("PYTHONPYCACHEPREFIX", str(VENV / "pycache"))
    return env


def _run(python: Path, *args: str) -> int:
    """Run a child to its end. Ctrl-C reaches it too (same terminal), and it stops itself:
    we wait for that instead of leaving it behind."""
    process = subprocess.Popen([str(python), *args], cwd=ROOT, env=_child_env())
    while True:
        try:
            code = process.wait()
        except KeyboardInterrupt:
            continue
        return INTERRUPTED if code == -2 else code  # killed by SIGINT, the shell's way


def run_tests(python: Path, pytest_args: list[str]) -> int:
    for label, args in (
        ("ruff", ["-m", "ruff", "check", "."]),
        ("mypy --strict", ["-m", "mypy"]),
    ):
        print(f"dev.py: {label}", flush=True)
        code = _run(python, *args)
        if code:
            print(f"dev.py: {label} failed", flush=True)
            return code
    print("dev.py: pytest", flush=True)
    return _run(python, "-m", "pytest", *pytest_args)


def run_demo(python: Path, demo_args: list[str]) -> int:
    """Run the demo from this source tree (the current directory is on the path with -m:
    nothing to build). On POSIX dev.py becomes the demo (exec), so a signal sent to this
    process (`kill -TERM`, `kill -INT`, a closed terminal's SIGHUP) reaches the demo itself and
    its exit status is the demo's own; no child is left behind."""
    args = ["-m", "weex_anyio", "demo", *demo_args]
    if os.name != "posix":
        return _run(python, *args)
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(ROOT)
    os.execve(python, [str(python), *args], _child_env())  # noqa: S606 - our own, no shell


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "setup"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    try:
        python = ensure_venv("demo" if command == "demo" else "dev")
        if command == "test":
            return run_tests(python, rest)
        if command == "demo":
            return run_demo(python, rest)
        print(f"dev.py: {VENV.name}/ is ready: {python.relative_to(ROOT)}", flush=True)
        return 0
    except KeyboardInterrupt:
        print("\ndev.py: interrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
