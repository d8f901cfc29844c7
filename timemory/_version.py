"""The package's version, read by the build backend and by ``timemory --version``."""

__version__ = "0.1.0"
