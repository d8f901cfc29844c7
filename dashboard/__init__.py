"""The Streamlit side. Pages import only from here (and types, errors and settings from ``timemory``):

- :mod:`dashboard.adapter`: every read and write, with the caches (each write clears the readers it affects);
- :mod:`dashboard.ui`: the current user, URL state, confirmation dialogs, messages shown once;
- :mod:`dashboard.state`: session-state keys and query parameters;
- :mod:`dashboard.views`: drawing helpers shared by pages; :mod:`dashboard.router` and :mod:`dashboard.nav`;
- plain functions without Streamlit, for what pages decide: :mod:`dashboard.edits` (the memory grid),
  :mod:`dashboard.lab_jobs` (starting replays), :mod:`dashboard.lab_tables` (the Lab's tables),
  :mod:`dashboard.moments` (the Timeline's moment, the browser's dates).
"""
