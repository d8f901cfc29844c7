"""``timemory dashboard``: the Streamlit app of the checkout (``streamlit_app.py``, ``pages/``, ``dashboard/``,
``.streamlit/``), from any directory. A wheel carries those same files under ``timemory/_app``."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from timemory._extras import require
from timemory.errors import ConfigurationError

PACKAGE = Path(__file__).resolve().parents[1]
APP_SCRIPT = "streamlit_app.py"


def app_dir() -> Path:
    """Where the app's files are: inside the installed package, else the checkout this package runs from."""
    for where in (PACKAGE / "_app", PACKAGE.parent):
        if (where / APP_SCRIPT).is_file() and (where / "dashboard").is_dir():
            return where
    raise ConfigurationError(f"The dashboard's files are not installed beside {PACKAGE}: reinstall timemory.")


def config_options(app: Path) -> dict[str, str]:
    """The app's ``.streamlit/config.toml`` as ``{"section.key": value}``: Streamlit reads that file from the working
    directory only, and the command runs from anywhere, so they are passed on its command line."""
    path = app / ".streamlit" / "config.toml"
    if not path.is_file():
        return {}
    options = {}
    for section, values in tomllib.loads(path.read_text(encoding="utf-8")).items():
        for key, value in values.items():
            options[f"{section}.{key}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return options


def command(app: Path, *, host: str | None, port: int | None) -> list[str]:
    options = config_options(app)
    if host:
        options["server.address"] = host
    if port:
        options["server.port"] = str(port)
    flags = [f"--{name}={value}" for name, value in options.items()]
    return [sys.executable, "-m", "streamlit", "run", str(app / APP_SCRIPT), *flags]


def cmd_dashboard(args: argparse.Namespace) -> int:
    for module in ("streamlit", "pandas", "plotly"):
        require(module, "dashboard", "The dashboard")
    cmd = command(app_dir(), host=args.host, port=args.port)
    if os.name == "posix":  # the app takes this process's place: signals and the exit status are its own
        sys.stdout.flush()
        os.execv(cmd[0], cmd)
    return subprocess.call(cmd)


def add_dashboard_command(sub: Any) -> None:
    s = sub.add_parser("dashboard", help="start the dashboard (Streamlit) on this machine")
    s.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (default 8501)")
    s.set_defaults(func=cmd_dashboard)
