"""Optional parts: a missing one is an error naming its extra; the dashboard command and the data folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from timemory._extras import installed, require
from timemory.errors import ConfigurationError, MissingExtraError
from timemory.service._dashboard_cli import app_dir, command, config_options
from timemory.settings import Settings, default_data_dir

ROOT = Path(__file__).resolve().parents[1]


def test_a_missing_module_names_the_extra_that_brings_it() -> None:
    with pytest.raises(MissingExtraError) as err:
        require("no_such_module_here.sub", "dashboard", "The map")
    assert isinstance(err.value, ConfigurationError) and err.value.code == "missing_extra"
    assert err.value.extra == "dashboard" and err.value.module == "no_such_module_here"
    assert str(err.value).startswith("The map needs the optional 'dashboard' dependencies")
    assert 'pip install "timemory[dashboard]"' in str(err.value)
    assert not installed("no_such_module_here") and not installed("no_such_module_here.sub")
    assert installed("numpy") and require("json", "core", "x") is sys.modules["json"]


def test_a_module_that_is_there_but_broken_raises_as_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_extra_module.py").write_text("raise RuntimeError('bad build')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RuntimeError, match="bad build"):
        require("broken_extra_module", "local", "The thing")


def test_run_from_the_checkout_data_stays_in_its_data_folder(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    monkeypatch.delenv("TIMEMORY_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # whatever the working directory
    assert default_data_dir() == ROOT / "data"
    assert Settings(_env_file=None).data_dir == ROOT / "data"  # type: ignore[call-arg]
    monkeypatch.setenv("TIMEMORY_DATA_DIR", str(tmp_path / "mine"))
    assert Settings(_env_file=None).data_dir == tmp_path / "mine"  # type: ignore[call-arg]


def test_the_dashboard_command_runs_the_checkouts_app_with_its_config() -> None:
    app = app_dir()
    assert app == ROOT
    options = config_options(app)
    assert options["server.headless"] == "true" and options["theme.primaryColor"] == "#4F46E5"
    assert options["browser.gatherUsageStats"] == "false" and options["server.address"] == "127.0.0.1"
    cmd = command(app, host="0.0.0.0", port=8600)
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"] and cmd[4] == str(ROOT / "streamlit_app.py")
    assert "--server.port=8600" in cmd and "--theme.base=light" in cmd
    assert [c for c in cmd if c.startswith("--server.address=")] == ["--server.address=0.0.0.0"]
    assert [c for c in command(app, host=None, port=None) if c.startswith("--server.")] == \
        [f"--server.{k}={v}" for k, v in (("headless", "true"), ("address", "127.0.0.1"), ("fileWatcherType", "none"))]
