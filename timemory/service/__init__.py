"""Serving TiMemory to others: the HTTP API, the MCP server, queue workers and the command line."""

from timemory.service._api import create_app
from timemory.service._cli import main, parser
from timemory.service._workers import is_loopback, run_worker, serve

__all__ = ["create_app", "is_loopback", "main", "parser", "run_worker", "serve"]
