"""Dependencies point only downward: a module imports from its own layer or a lower one.

The layers follow the pipeline, with two departures from its reading order that the
dependencies force:

- the registered components (task types, weighting strategies, data sources, trunks and
  backbones) sit below `recipe`, because the recipe schema is assembled from each registered
  class's `Config`;
- `results` (run directories: written atomically, read back without TensorFlow) sits below
  `training`, which writes them; nothing in `results` knows how a run was trained.

An import of a higher layer is allowed only inside a function, and only with a comment on its
line saying why: `# noqa: layering - <reason>`.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mtl_runner"

LAYERS: tuple[tuple[str, ...], ...] = (  # low → high
    ("mtl_runner", "errors", "registry", "reading"),  # `mtl_runner` is the package's __init__
    ("tasks", "weighting"),
    ("data",),
    ("models",),
    ("recipe",),
    ("results",),
    ("training",),
    ("inference", "finetune", "sweep", "compare", "plots"),
    ("commands", "cli", "__main__"),
)

# Upward imports still to remove: (file, imported module) → why it is there. The test below
# fails once one is gone, so that the list only shrinks.
PENDING: dict[tuple[str, str], str] = {
    ("mtl_runner/data/sources.py", "mtl_runner.recipe.schema"):
        "CsvConfig's defaults; move CsvConfig into data/ and let recipe.schema import it",
    ("mtl_runner/tasks/regression.py", "mtl_runner.models.metrics"):
        "the scaled MAE/RMSE metrics belong to the regression task type; move them to tasks/",
}

MARK = "# noqa: layering"


def component(module: str, package: str = "mtl_runner") -> str:
    """`mtl_runner.training.run` → `training`; `mtl_runner` → `mtl_runner`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else package


def module_name(file: Path, root: Path) -> str:
    parts = list(file.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(node: ast.AST, here: str, is_package: bool, package: str) -> list[str]:
    """The package modules an import statement names (relative imports resolved)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = here.split(".")
            base = base[:len(base) - node.level + (1 if is_package else 0)]
            module = ".".join([*base, *([node.module] if node.module else [])])
        else:
            module = node.module or ""
        # `from mtl_runner import cli` imports a module; `from mtl_runner import __version__` not
        names = [f"{module}.{alias.name}" if module == package else module for alias in node.names]
    else:
        return []
    return [name for name in names if name == package or name.startswith(package + ".")]


def in_function(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return True
    return False


def upward_imports(root: Path, layers=LAYERS) -> tuple[list[str], list[tuple[str, str]]]:
    """Every import in the package under `root` that reaches a higher layer.

    Returns:
        (problems, pending): `file:line: message` for each import that is not allowed, and
        (file, module) of the upward imports that are allowed only by `PENDING`.
    """
    package = root.name
    rank = {name: level for level, names in enumerate(layers) for name in names}
    problems, pending = [], []
    for file in sorted(root.rglob("*.py")):
        here = module_name(file, root)
        where = file.relative_to(root.parent).as_posix()
        source = file.read_text(encoding="utf-8")
        lines = source.splitlines()
        tree = ast.parse(source, filename=where)
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        mine = component(here, package)
        if mine not in rank:
            problems.append(f"{where}:1: `{mine}` is in no layer; add it to LAYERS in "
                            f"tests/unit/test_layers.py")
            continue
        for node in ast.walk(tree):
            for module in imported_modules(node, here, file.name == "__init__.py", package):
                theirs = component(module, package)
                if rank.get(theirs, -1) <= rank[mine]:
                    continue
                if (where, module) in PENDING:
                    pending.append((where, module))
                    continue
                said = any(MARK in line for line in lines[node.lineno - 1:node.end_lineno])
                if said and in_function(node, parents):
                    continue
                how = ("inside a function without a `# noqa: layering - <reason>` comment"
                       if in_function(node, parents) else "at module level")
                problems.append(f"{where}:{node.lineno}: `{mine}` imports {module} "
                                f"(`{theirs}` is a higher layer) {how}")
    return problems, pending


def test_every_import_points_downward():
    problems, _ = upward_imports(PACKAGE)
    assert not problems, "upward imports:\n" + "\n".join(problems)


def test_pending_upward_imports_are_still_there():
    _, pending = upward_imports(PACKAGE)
    gone = sorted(set(PENDING) - set(pending))
    assert not gone, f"no longer imported, remove from PENDING in {__file__}: {gone}"


@pytest.fixture
def fake_package(tmp_path):
    """A package `mtl_runner` with a low module `errors` and a high one `cli`."""
    root = tmp_path / "mtl_runner"
    root.mkdir()
    (root / "__init__.py").write_text("__version__ = '0'\n")
    (root / "cli.py").write_text("from mtl_runner import errors\nfrom . import errors\n")

    def write_errors(text: str) -> Path:
        (root / "errors.py").write_text(textwrap.dedent(text))
        return root

    return write_errors


def test_the_check_finds_upward_imports_at_module_level_and_in_functions(fake_package):
    root = fake_package("""\
        import mtl_runner.cli
        from . import cli as relative
        from mtl_runner import cli, __version__

        def later():
            from mtl_runner.cli import main
        """)
    problems, _ = upward_imports(root)
    assert [p.split(" (")[0] for p in problems] == [
        "mtl_runner/errors.py:1: `errors` imports mtl_runner.cli",
        "mtl_runner/errors.py:2: `errors` imports mtl_runner.cli",
        "mtl_runner/errors.py:3: `errors` imports mtl_runner.cli",
        "mtl_runner/errors.py:6: `errors` imports mtl_runner.cli",
    ]
    assert problems[0].endswith("at module level")
    assert problems[3].endswith("without a `# noqa: layering - <reason>` comment")


def test_a_function_level_upward_import_with_a_reason_is_allowed(fake_package):
    root = fake_package("""\
        from mtl_runner import __version__

        def later():
            from mtl_runner.cli import main  # noqa: layering - why it cannot move
        """)
    assert upward_imports(root) == ([], [])
    root = fake_package("import mtl_runner.cli  # noqa: layering - module level is never allowed\n")
    [problem] = upward_imports(root)[0]
    assert problem.endswith("at module level")


def test_a_module_in_no_layer_is_reported(fake_package):
    root = fake_package("")
    (root / "extra.py").write_text("")
    assert upward_imports(root)[0] == [
        "mtl_runner/extra.py:1: `extra` is in no layer; add it to LAYERS in "
        "tests/unit/test_layers.py"]
