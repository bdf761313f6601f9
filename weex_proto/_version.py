"""The package's version, in one place: pyproject.toml and `weex-ws --version` read it."""

__version__ = "0.1.0"
