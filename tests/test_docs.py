"""The README keeps up with the code: every CLI command is documented, and every flag of the lab's commands."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from timemory.service import parser

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_is_in_the_readme() -> None:
    missing = [name for name in subcommands() if not re.search(rf"\btimemory {re.escape(name)}\b", README)]
    assert not missing, f"undocumented commands: {missing}"


def test_every_lab_and_export_option_is_in_the_readme() -> None:
    for name in ("replay", "evaluate", "export"):
        for action in subcommands()[name]._actions:
            flags = [f for f in action.option_strings if f not in ("-h", "--help")]
            if flags:  # documented under its long or its short name
                assert any(re.search(re.escape(f) + r"(?![\w-])", README) for f in flags), \
                    f"`{name} {flags[-1]}` is not documented in README.md"


def test_the_readme_layout_names_every_module() -> None:
    root = Path(__file__).resolve().parents[1]
    layout = README.split("**Layout.**", 1)[1].split("**Words.**", 1)[0]
    modules = [p for p in (root / "timemory").rglob("*.py") if p.stem not in ("__init__", "__main__")]
    modules += [p for p in (root / "dashboard").glob("*.py") if p.stem != "__init__"]
    missing = sorted(str(p.relative_to(root)) for p in modules if not re.search(rf"\b{re.escape(p.stem)}\b", layout))
    assert len(modules) > 80 and missing == []
