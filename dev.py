#!/usr/bin/env python3
"""One entry point for people and CI: sets up `.venv`, then runs the demo or the checks.

Only the standard library is used here, because this file runs before anything is installed.

    python3 dev.py demo [ARGS...]   live terminal stream (embedded simulator; --live for WEEX)
    python3 dev.py test [PYTEST ARGS...]   ruff, mypy --strict, then the whole pytest suite
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".weex-ws-installed"


def _venv_python() -> Path:
    scripts = "Scripts" if os.name == "nt" else "bin"
    return VENV / scripts / ("python.exe" if os.name == "nt" else "python")


def _wanted_stamp() -> str:
    """Reinstall whenever the project's metadata changes (new dependency, new script)."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return f"{sys.version_info[:2]}:{digest}"


def ensure_venv() -> Path:
    if sys.version_info < (3, 11):
        sys.exit(f"weex-ws needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    python = _venv_python()
    if not python.exists():
        print(f"dev.py: creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    if not STAMP.exists() or STAMP.read_text() != _wanted_stamp():
        print("dev.py: installing weex-ws and its development tools", flush=True)
        pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
        subprocess.run([*pip, "install", "-e", f"{ROOT}[dev]"], check=True)
        STAMP.write_text(_wanted_stamp())
    return python


def _run(python: Path, *args: str) -> int:
    return subprocess.run([str(python), *args], cwd=ROOT, check=False).returncode


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
    return _run(python, "-m", "weex_anyio", "demo", *demo_args)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "setup"}:
        print(__doc__)
        return 2
    python = ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "test":
        return run_tests(python, rest)
    if command == "demo":
        return run_demo(python, rest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
