"""The package's shape (issue 35): imports run one way (no cycle, lazy imports inside functions included) and no
module grows past 400 lines."""

import ast
from pathlib import Path

import colorem

PACKAGE = Path(colorem.__file__).parent


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")


def import_graph() -> dict[str, set[str]]:
    """Each colorem module -> the colorem modules it imports anywhere in its text (a package counts with its
    modules: importing colorem.models.registry runs colorem.models too)."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                dotted = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                dotted = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            else:
                continue
            target = next((candidate for candidate in dotted if candidate in modules), None)
            if target:
                found.add(target)
                parent = target.rsplit(".", 1)[0]
                if parent in modules and parent != "colorem" and not name.startswith(parent + "."):
                    found.add(parent)
        graph[name] = found - {name}
    return graph


def test_no_import_cycle():
    graph = import_graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(name):] + [name]))
        if name in done:
            return
        for dependency in sorted(graph[name]):
            visit(dependency, path + [name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_no_module_over_400_lines():
    long = {module_name(path): n for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 400}
    assert not long, long
