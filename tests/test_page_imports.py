"""Pages draw; the dashboard package reads and writes. A page (``pages/*.py``, ``streamlit_app.py``) imports from the
project only ``dashboard`` and, from ``timemory``, only types, errors and settings — decided by what each name is: a
pydantic model, a dataclass, an exception, ``Settings``, a ``Literal`` alias or an all-caps constant. Never ``TiMem``,
a service, or a function. Nor does a page reach a dashboard module's private names (``adapter._tm()``)."""

from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, get_origin

from pydantic import BaseModel

from timemory import Settings

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "streamlit_app.py", *sorted((ROOT / "pages").glob("*.py"))]


def project_modules() -> set[str]:
    """Top-level names that import something of this project: its packages and root modules, and the tests'
    helper modules (on the path when tests run)."""
    names = {p.name for p in ROOT.iterdir() if p.is_dir() and any(p.glob("*.py"))}
    names |= {p.stem for p in ROOT.glob("*.py")} | {p.stem for p in (ROOT / "tests").glob("*.py")}
    return names - {"dashboard"}


def kind(name: str, value: Any) -> str | None:
    """What an imported ``timemory`` name is, when a page may import it; None otherwise."""
    if value is Settings:
        return "settings"
    if isinstance(value, type):
        if issubclass(value, BaseModel):
            return "model"
        if dataclasses.is_dataclass(value):
            return "dataclass"
        if issubclass(value, BaseException):
            return "error"
        return None
    if get_origin(value) is Literal:
        return "literal"
    if name.isupper() and not callable(value) and not isinstance(value, ModuleType):
        return "constant"
    return None


def offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    project = project_modules()
    found, dashboard_names = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                found.append(f"{node.lineno}: relative import")
                continue
            module = node.module or ""
            top = module.split(".")[0]
            if top == "dashboard":
                dashboard_names |= {a.asname or a.name for a in node.names}
            elif top == "timemory":
                imported = importlib.import_module(module)
                found += [f"{node.lineno}: {module}.{a.name} is not a type, error, setting or constant"
                          for a in node.names if a.name == "*" or kind(a.name, getattr(imported, a.name)) is None]
            elif top in project:
                found.append(f"{node.lineno}: {module} is not the dashboard package")
        elif isinstance(node, ast.Import):
            for a in node.names:
                top = a.name.split(".")[0]
                if top == "dashboard":
                    dashboard_names.add(a.asname or top)
                elif top == "timemory" or top in project:
                    found.append(f"{node.lineno}: import {a.name} (name what is taken from the dashboard)")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in dashboard_names \
                and node.attr.startswith("_") and not node.attr.startswith("__"):
            found.append(f"{node.lineno}: {node.value.id}.{node.attr} is private")
    return sorted(found, key=lambda f: int(f.split(":")[0]))


def test_the_check_refuses_the_core_s_services_and_functions_and_allows_its_types(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import pandas as pd\n"
        "from dashboard import adapter, ui\n"
        "from timemory import MEMORY_TYPES, Memory, MemoryFilter, SearchMode, Settings, TiMemoryError\n"
        "from timemory.search import KEYWORD_WEIGHT\n"
        "from timemory.lab import Granularity, ReplayJob\n"
        "from timemory import TiMem\n"  # 6: the facade
        "from timemory.core import in_reply_order\n"  # 7: a function
        "from timemory.lab import ReplayJobs, place_query\n"  # 8: a service class, a function
        "from timemory import lab\n"  # 9: a module
        "import timemory.core\n"  # 10
        "from bench import common\n"  # 11: the project, not the dashboard
        "from . import chat\n"  # 12
        "tm = adapter._tm()\n"  # 13: the dashboard's internals
        "ui.plural(2, 'memory')\n")
    assert offences(sample) == [
        "6: timemory.TiMem is not a type, error, setting or constant",
        "7: timemory.core.in_reply_order is not a type, error, setting or constant",
        "8: timemory.lab.ReplayJobs is not a type, error, setting or constant",
        "8: timemory.lab.place_query is not a type, error, setting or constant",
        "9: timemory.lab is not a type, error, setting or constant",
        "10: import timemory.core (name what is taken from the dashboard)",
        "11: bench is not the dashboard package",
        "12: relative import",
        "13: adapter._tm is private",
    ]


def test_names_are_told_apart_by_what_they_are() -> None:
    import timemory
    from timemory import lab, search

    assert kind("Memory", timemory.Memory) == "model" and kind("MemoryFilter", timemory.MemoryFilter) == "dataclass"
    assert kind("NotFoundError", timemory.NotFoundError) == "error" and kind("Settings", Settings) == "settings"
    assert kind("SearchMode", timemory.SearchMode) == "literal" and kind("Granularity", lab.Granularity) == "literal"
    assert kind("KEYWORD_WEIGHT", search.KEYWORD_WEIGHT) == "constant"
    assert kind("MEMORY_TYPES", timemory.MEMORY_TYPES) == "constant"
    assert {kind(n, getattr(timemory, n)) for n in ("TiMem", "ChatService", "ChatExchange")} == {None}
    assert kind("evaluate", lab.evaluate) is None and kind("NumpyIndex", search.NumpyIndex) is None


def test_pages_import_only_the_dashboard_and_the_core_s_types() -> None:
    assert len(PAGES) >= 7
    found = {str(p.relative_to(ROOT)): bad for p in PAGES if (bad := offences(p))}
    assert found == {}
