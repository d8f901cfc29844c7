"""TiMemory dashboard: the router (``dashboard/router.py``) with its sidebar, over the pages in ``pages/``."""

from dashboard.nav import navigation

page = navigation()  # first, so the sidebar shows the page titles while the core is imported

from dashboard.router import run_app  # noqa: E402  (the heavy import, after the pages are declared)

run_app(page)
