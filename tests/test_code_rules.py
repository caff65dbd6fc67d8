"""Rules of the code in src/, read with ``ast``: functions short enough to read in one screen, few
enough positional parameters to call without counting, and imports that follow the data: no stage
imports from a stage after it."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.helpers import REPO_ROOT, untrained_run

SOURCE = REPO_ROOT / "src" / "mnist_logreg"
MOST_LINES = 50  # of a function's body, its docstring aside
MOST_POSITIONAL = 5  # parameters that can be given by position (self and cls aside)
# The lesson's own signature, fit(epochs, lr, model, train_loader, val_loader, opt_func), kept as it wrote it.
EXCEPTIONS = {("train/loop.py", "fit")}


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
        if positional(node) > MOST_POSITIONAL and (path, node.name) not in EXCEPTIONS
    ]
    assert over == []


# The subpackages in the order data flows through them (docs/development.md draws the map).
STAGES = ("images", "data", "model", "train", "infer", "report", "web")
# Modules beside the stages that every stage may use, and that use no stage themselves.
FOUNDATION = ("config", "errors", "files", "torchrun", "workers")


def imported_modules(path) -> set[str]:
    """Every module of the package that the file at ``path`` imports, at its top or inside a function,
    as dotted names under the package ("data.catalog", "config", "images")."""
    module = path.relative_to(SOURCE).with_suffix("").parts
    package = list(module if path.name == "__init__.py" else module[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
            elif node.module and node.module.split(".")[0] == SOURCE.name:
                base, node.module = [], node.module.partition(".")[2] or None
            else:
                continue
            target = [*base, *(node.module.split(".") if node.module else [])]
            # "from .train import distributed" imports a module; "from .config import Limits" a name
            package_named = SOURCE.joinpath(*target).is_dir()
            found |= {".".join([*target, alias.name]) if package_named else ".".join(target) for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name.partition(".")[2] for alias in node.names if alias.name.startswith(SOURCE.name + ".")}
    return {name.removesuffix(".__init__") for name in found if name}


def stage_of(name: str) -> str | None:
    first = name.split(".")[0]
    return first if first in STAGES else None


def test_the_import_rule_sees_every_stage_and_the_imports_between_them():
    imports = {path.relative_to(SOURCE).as_posix(): imported_modules(path) for path in SOURCE.rglob("*.py")}
    assert {stage_of(path.replace("/", ".")) for path in imports} >= set(STAGES)
    assert "data.catalog" in imports["data/splits.py"] and "images.inputs" in imports["data/splits.py"]
    assert "train.distributed" in imports["cli.py"]  # a function's own import counts too
    assert "data.pens" in imports["report/scores.py"]


def test_no_stage_imports_from_a_later_stage():
    later = []
    for path in SOURCE.rglob("*.py"):
        own = stage_of(path.relative_to(SOURCE).as_posix().replace("/", "."))
        for name in imported_modules(path):
            used = stage_of(name)
            if own is not None and used is not None and STAGES.index(used) > STAGES.index(own):
                later.append(f"{path.relative_to(SOURCE)} imports {name}")
    assert later == []


# The one module of answering that tunes: `serve --corrections` (it imports train/tune.py when it starts).
TUNES = SOURCE / "web" / "corrections.py"


def test_answering_imports_no_training_code():
    """A served or predicting run needs its folder, never the code that trained it."""
    found = [
        f"{path.relative_to(SOURCE)} imports {name}"
        for stage in ("infer", "web")
        for path in (SOURCE / stage).rglob("*.py")
        if path != TUNES
        for name in imported_modules(path)
        if stage_of(name) == "train"
    ]
    assert found == []
    assert any(stage_of(name) == "train" for name in imported_modules(TUNES))  # the exception is still needed


def test_a_server_without_corrections_loads_no_training_code(tmp_path):
    untrained_run(tmp_path / "run")
    code = (
        "import sys; from mnist_logreg.web.app import create_app; create_app(sys.argv[1]); "
        "print(sorted(m for m in sys.modules if m.startswith('mnist_logreg.train') or m == 'torch'))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_modules_beside_the_stages_import_no_stage():
    upward = [
        f"{name}.py imports {used}"
        for name in FOUNDATION
        for used in imported_modules(SOURCE / f"{name}.py")
        if stage_of(used) is not None
    ]
    assert upward == []
