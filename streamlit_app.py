"""TiMemory dashboard: the router (``dashboard/router.py``) with its sidebar, over the pages in ``pages/``."""

from dashboard.router import run_app

run_app()
