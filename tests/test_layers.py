"""The core's layout: no import cycle in `weex_proto`, and async code only in its runtime.

`weex_proto` has two layers. At the top level, the sans-IO state machines: no event loop, no
`async def`, no `await`. In `weex_proto.runtime`, the client built on them for any event loop
(`BaseClient`, `ConnectionRunner`, the `Backend` an adapter supplies, `ClientHub` and what only
it uses). The state machines never import the runtime.

The modules are read as source with `ast`, not imported one by one. The import graph has one
edge per import statement, at module level (`if TYPE_CHECKING:` blocks included) and inside
functions alike: an import deferred into a function still makes its module depend on the other
one, and only hides the cycle from Python's import machinery. An import of a submodule also
imports its packages (`weex_proto.runtime.hub` runs `weex_proto/runtime/__init__.py`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import weex_proto

CORE = Path(weex_proto.__file__).parent
RUNTIME = "runtime"
"""The subpackage of `weex_proto` where async code may live."""


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name → source file, for `package` and everything under it."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement of `tree`, at module level or nested in a function or block."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def _targets(node: ast.Import | ast.ImportFrom, name: str, is_package: bool) -> Iterator[str]:
    """The dotted names an import statement in module `name` loads (known or not)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = node.module or ""
    if node.level:
        package = name.split(".") if is_package else name.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    yield base
    for alias in node.names:
        yield f"{base}.{alias.name}"  # `from package import submodule`


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module → the modules of `package` its imports load.

    A target's enclosing packages count too, except those enclosing the importer itself: they
    are already being imported when it runs.
    """
    modules = module_files(package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        own = {*_ancestors(name), name}
        for node in _imports(tree):
            for target in _targets(node, name, _is_package(path)):
                if target not in modules:
                    continue
                graph[name].update(
                    loaded for loaded in [*_ancestors(target), target] if loaded not in own
                )
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                connect(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1 or module in graph[module]:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            connect(module)
    return sorted(found)


def _in_runtime(name: str) -> bool:
    return name.split(".")[1:2] == [RUNTIME]


def async_code(path: Path) -> list[str]:
    """`line: what` for every `async def`, `await`, `async for`/`with` and async comprehension."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.AsyncFunctionDef | ast.Await | ast.AsyncFor | ast.AsyncWith):
            found.append((node.lineno, type(node).__name__))
        elif isinstance(node, ast.comprehension) and node.is_async:
            found.append((node.target.lineno, "async comprehension"))
    return [f"{line}: {what}" for line, what in sorted(found)]


def test_the_core_has_no_import_cycle() -> None:
    assert cycles(import_graph(CORE)) == []


def test_async_code_lives_only_in_the_runtime() -> None:
    found = {
        str(path.relative_to(CORE.parent)): lines
        for name, path in module_files(CORE).items()
        if not _in_runtime(name) and (lines := async_code(path))
    }
    assert found == {}


def test_the_state_machines_never_import_the_runtime() -> None:
    upward = {
        module: sorted(target for target in targets if _in_runtime(target))
        for module, targets in import_graph(CORE).items()
        if not _in_runtime(module)
    }
    assert {module: targets for module, targets in upward.items() if targets} == {}


def test_the_runtime_holds_the_async_code() -> None:
    """The scan looks where the async code is: the runtime's modules have it."""
    runtime = {name: path for name, path in module_files(CORE).items() if _in_runtime(name)}
    assert f"weex_proto.{RUNTIME}.client_base" in runtime
    assert async_code(runtime[f"weex_proto.{RUNTIME}.client_base"])


def write_package(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {
                "pkg/__init__.py": "",
                "pkg/a.py": "from .b import x\n",
                "pkg/b.py": "from . import a\n",
            },
            [["pkg.a", "pkg.b"]],
            id="relative",
        ),
        pytest.param(
            {
                "pkg/__init__.py": "",
                "pkg/a.py": "import pkg.sub.c\n",
                "pkg/sub/__init__.py": "from ..a import y\n",
                "pkg/sub/c.py": "",
            },
            [["pkg.a", "pkg.sub"]],
            id="through-a-package",
        ),
        pytest.param(
            {
                "pkg/__init__.py": "from .a import x\n",
                "pkg/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from pkg import b\n",
                "pkg/b.py": "from .a import x\n",
            },
            [["pkg.a", "pkg.b"]],
            id="type-checking",
        ),
        pytest.param(
            {
                "pkg/__init__.py": "from .a import x\nfrom .sub import c\n",
                "pkg/a.py": "def f():\n    from . import b\n",
                "pkg/b.py": "x = 1\n",
                "pkg/sub/__init__.py": "",
                "pkg/sub/c.py": "from . import d\n",
                "pkg/sub/d.py": "from .. import a\n",
            },
            [],
            id="no-cycle",
        ),
    ],
)
def test_the_cycle_check_sees_cycles(
    tmp_path: Path, files: dict[str, str], expected: list[list[str]]
) -> None:
    assert cycles(import_graph(write_package(tmp_path, files))) == expected


def test_imports_inside_functions_count(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "import json\n\ndef f():\n    from .b import x\n",
            "pkg/b.py": "class B:\n    def g(self):\n        from pkg import a\n",
        },
    )
    assert import_graph(package) == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}
    assert cycles(import_graph(package)) == [["pkg.a", "pkg.b"]]


def test_every_kind_of_async_code_is_seen(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "async def f(xs):\n"
        "    await g()\n"
        "    async for x in xs:\n"
        "        pass\n"
        "    async with h():\n"
        "        pass\n"
        "def k(xs):\n"
        "    return (x async for x in xs)\n"
    )
    assert async_code(source) == [
        "1: AsyncFunctionDef",
        "2: Await",
        "3: AsyncFor",
        "5: AsyncWith",
        "8: async comprehension",
    ]


def test_the_tunnels_old_public_path_still_works() -> None:
    """`weex_proto.proxy.establish_tunnel` was public: it still gives the function (saying
    where it lives now), and importing `weex_proto.proxy` alone imports no runtime module."""
    import subprocess
    import sys

    from weex_proto.runtime.tunnel import establish_tunnel

    with pytest.warns(DeprecationWarning, match=r"weex_proto\.runtime\.tunnel"):
        from weex_proto.proxy import establish_tunnel as old_path
    assert old_path is establish_tunnel
    probe = (
        "import sys, weex_proto.proxy; "
        "print(sorted(m for m in sys.modules if m.startswith('weex_proto.runtime')))"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
