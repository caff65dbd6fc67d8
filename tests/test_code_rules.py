"""Rules of the code in src/, read with ``ast``: functions short enough to read in one screen, and
few enough positional parameters to call without counting."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import REPO_ROOT

SOURCE = REPO_ROOT / "src" / "mnist_logreg"
MOST_LINES = 50  # of a function's body, its docstring aside
MOST_POSITIONAL = 5  # parameters that can be given by position (self and cls aside)
# The lesson's own signature, fit(epochs, lr, model, train_loader, val_loader, opt_func), kept as it wrote it.
EXCEPTIONS = {("training.py", "fit")}


def functions() -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found.append((str(path.relative_to(SOURCE)), node))
    return found


def body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    if (
        isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]  # the docstring
    return node.end_lineno - body[0].lineno + 1 if body else 0


def positional(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    names = [argument.arg for argument in node.args.posonlyargs + node.args.args]
    return len(names) - (names[:1] in (["self"], ["cls"]))


def test_the_rules_see_every_module_and_can_fail():
    found = functions()
    assert len({path for path, _ in found}) >= 30 and len(found) > 300
    longest = max(body_lines(node) for _, node in found)
    assert 30 < longest <= MOST_LINES  # the measure sees real bodies: the longest is near the rule


def test_no_function_in_src_is_over_50_lines():
    long = [
        f"{path}:{node.lineno} {node.name} ({body_lines(node)} lines)"
        for path, node in functions()
        if body_lines(node) > MOST_LINES
    ]
    assert long == []


def test_no_function_in_src_takes_over_5_positional_parameters():
    over = [
        f"{path}:{node.lineno} {node.name} ({positional(node)})"
        for path, node in functions()
        if positional(node) > MOST_POSITIONAL and (Path(path).name, node.name) not in EXCEPTIONS
    ]
    assert over == []
