"""The package's shape: one door and documented subpackages for everything outside it, layers that import only
downward, and modules small enough to read."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "timemory"
# What code outside the package may import from: the door and the documented subpackages (each has ``__all__``).
PUBLIC = ["timemory", "timemory.core", "timemory.store", "timemory.search", "timemory.providers", "timemory.lab",
          "timemory.service", "timemory.wiring"]
# Bottom to top: a module may import from its own layer and the layers below it, never from above.
LAYERS = [
    {"errors", "schemas", "settings", "_validation", "_prompts", "_time", "_dates", "_extras", "_version"},
    {"providers"},
    {"store"},
    {"search"},
    {"core"},
    {"wiring"},
    {"_facade"},
    {"lab"},
    {"service"},
    {"__init__", "__main__"},
]
MAX_LINES = 400


def outside_files() -> list[Path]:
    found = [ROOT / "streamlit_app.py"]
    for folder in ("pages", "dashboard", "bench", "examples"):  # tests may reach internals
        found += sorted((ROOT / folder).rglob("*.py"))
    return found


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every ``timemory`` import in the file (names empty for ``import timemory.x``)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and \
                node.module.split(".")[0] == "timemory":
            out.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] == "timemory"]
    return out


def offences(path: Path) -> list[str]:
    found = []
    for line, module, names in imports(path):
        if module not in PUBLIC:
            found.append(f"{line}: {module} is not a public package")
            continue
        exported = set(importlib.import_module(module).__all__)
        found += [f"{line}: {module}.{n} is not exported" for n in names if n not in exported]
    return found


def test_the_check_catches_private_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from timemory import TiMem\nfrom timemory.search._matrix import NumpyIndex\n"
                      "from timemory.lab import _scores\nimport timemory.store._models\n")
    assert offences(sample) == ["2: timemory.search._matrix is not a public package",
                                "3: timemory.lab._scores is not exported",
                                "4: timemory.store._models is not a public package"]


def test_nothing_outside_the_package_imports_past_its_public_names() -> None:
    files = outside_files()
    found = {str(p.relative_to(ROOT)): bad for p in files if (bad := offences(p))}
    assert len(files) > 30 and found == {}


@pytest.mark.parametrize("package", PUBLIC)
def test_every_exported_name_exists(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__ and all(hasattr(module, name) for name in module.__all__)


def layer_of(module: str) -> int:
    """The layer of ``timemory.<part>…`` (the package itself is the door, on top)."""
    part = module.split(".")[1] if "." in module else "__init__"
    return next(i for i, names in enumerate(LAYERS) if part in names)


def test_layers_are_told_apart() -> None:
    assert layer_of("timemory.store._memories") < layer_of("timemory.search._embedded") \
        < layer_of("timemory.core._chat")
    assert layer_of("timemory._facade") < layer_of("timemory.lab._replay") < layer_of("timemory.service._cli")


def test_layers_import_only_downward() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        own = layer_of(module)
        upward += [f"{module}:{line} imports {target}" for line, target, _ in imports(path)
                   if target != "timemory" and layer_of(target) > own]
    assert upward == []


def test_no_module_is_over_the_limit() -> None:
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
