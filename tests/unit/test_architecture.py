"""The layout rules of hatchet_local, checked on its source: small modules, imports that point
one way (no cycle), no private name borrowed across modules, one module that runs
subprocesses, and command modules that depend on `cli.options` rather than on each other."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "hatchet_local"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_block(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Name | ast.Attribute)
        and ast.unparse(node.test).endswith("TYPE_CHECKING")
    )


def imports(path: Path) -> Iterator[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every import outside `if TYPE_CHECKING:`,
    at module level or inside functions (a lazy import still points somewhere)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if _type_checking_block(node):
            skipped |= {id(child) for child in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [alias.name for alias in node.names]
            yield node.module, names
            # `from hatchet_local import docker` imports the module hatchet_local.docker
            for name in names:
                if f"{node.module}.{name}" in MODULES:
                    yield f"{node.module}.{name}", []


def internal_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for target, _ in imports(path):
            if target in MODULES and target not in (name, "hatchet_local"):
                graph[name].add(target)
    return graph


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_is_small(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it by concern"


def test_imports_point_one_way() -> None:
    graph = internal_graph()
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycle = [*path[path.index(target) :], target]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if target not in state:
                visit(target, [*path, target])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_no_private_name_is_imported_across_modules() -> None:
    borrowed = [
        f"{name} imports {target}.{imported}"
        for name, path in MODULES.items()
        for target, names in imports(path)
        if target.startswith("hatchet_local")
        for imported in names
        if imported.startswith("_") and not imported.endswith("__")
    ]
    assert borrowed == []


def test_only_the_runner_runs_subprocesses() -> None:
    users = sorted(
        name
        for name, path in MODULES.items()
        if any(target == "subprocess" for target, _ in imports(path))
    )
    assert users == ["hatchet_local.runner"]


def test_command_modules_depend_on_options_not_on_each_other() -> None:
    """The package root imports the command modules; they share only `cli.options`."""
    graph = internal_graph()
    commands = [name for name in MODULES if name.startswith("hatchet_local.cli.")]
    assert "hatchet_local.cli.options" in commands
    for name in commands:
        cli_targets = {
            t for t in graph[name] if t.startswith("hatchet_local.cli.") or t == "hatchet_local.cli"
        }
        assert cli_targets <= {"hatchet_local.cli.options"}, f"{name} imports {cli_targets}"
    outside = [
        name
        for name in MODULES
        # `python -m hatchet_local` is an entry point, as the `hatchet-local` script is.
        if not name.startswith("hatchet_local.cli")
        and name != "hatchet_local.__main__"
        and any(t == "hatchet_local.cli" or t.startswith("hatchet_local.cli.") for t in graph[name])
    ]
    assert outside == [], "domain modules must not import the CLI"
