"""Model files shipped inside installed wheels, located without importing the package (imports can be heavy)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from timemory.errors import ConfigurationError


def packaged_file(package: str, relative: str, *, not_installed: str, missing: str) -> Path:
    """``relative`` inside ``package``'s directory; the messages say what to do (``missing`` may use ``{path}``)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(not_installed)
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        raise ConfigurationError(missing.format(path=path))
    return path
