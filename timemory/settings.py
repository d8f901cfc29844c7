"""Configuration from the environment and ``.env`` (pydantic-settings).

Nothing set means the embedded defaults: a SQLite file in the data folder (``data/`` of the checkout TiMemory runs
from, else the per-user data folder; ``TIMEMORY_DATA_DIR`` sets it), the local embedder and the local LLM.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Literal
from urllib.parse import quote_plus

from platformdirs import user_data_path
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

LLMProvider = Literal["openai", "openai-compatible", "local"]

DEFAULT_OPENAI_LLM = "gpt-4o-mini"
DEFAULT_OPENAI_EMBEDDING = "text-embedding-3-small"
LOCAL = "local"


def default_data_dir() -> Path:
    """``data/`` beside the package in a source checkout (``make run``), else the per-user data folder
    (``~/.local/share/timemory`` on Linux, ``~/Library/Application Support/timemory`` on macOS,
    ``%LOCALAPPDATA%\\timemory`` on Windows)."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "streamlit_app.py").is_file():
        return root / "data"
    return user_data_path("timemory", appauthor=False)


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # --- storage -------------------------------------------------------------------------------------------------
    database_url: str | None = Field(default=None, validation_alias=_env("TIMEMORY_DATABASE_URL", "database_url"))
    data_dir: Path = Field(default_factory=default_data_dir, validation_alias=_env("TIMEMORY_DATA_DIR", "data_dir"))
    tidb_host: str | None = Field(default=None, validation_alias=_env("TIDB_HOST", "tidb_host"))
    tidb_port: int = Field(default=4000, validation_alias=_env("TIDB_PORT", "tidb_port"))
    tidb_user: str | None = Field(default=None, validation_alias=_env("TIDB_USER", "tidb_user"))
    tidb_password: SecretStr | None = Field(default=None, validation_alias=_env("TIDB_PASSWORD", "tidb_password"))
    tidb_database: str = Field(default="test", validation_alias=_env("TIDB_DATABASE", "tidb_database"))
    tidb_ssl_ca: str | None = Field(default=None, validation_alias=_env("TIDB_SSL_CA", "tidb_ssl_ca"))
    tidb_ssl_verify: bool = Field(default=True, validation_alias=_env("TIDB_SSL_VERIFY", "tidb_ssl_verify"))
    vector_index: bool = Field(
        default=False,
        validation_alias=_env("TIMEMORY_VECTOR_INDEX", "vector_index"),
        description="On TiDB: create the HNSW vector index (adds a TiFlash replica).",
    )

    # --- models --------------------------------------------------------------------------------------------------
    openai_api_key: SecretStr | None = Field(default=None, validation_alias=_env("OPENAI_API_KEY", "openai_api_key"))
    openai_base_url: str | None = Field(default=None, validation_alias=_env("OPENAI_BASE_URL", "openai_base_url"))
    llm_model: str | None = Field(default=None, validation_alias=_env("TIMEMORY_LLM_MODEL", "llm_model"))
    embedding_model: str | None = Field(
        default=None, validation_alias=_env("TIMEMORY_EMBEDDING_MODEL", "embedding_model")
    )
    llm_timeout: float = Field(default=120.0, validation_alias=_env("TIMEMORY_LLM_TIMEOUT", "llm_timeout"))
    llm_max_retries: int = Field(default=2, validation_alias=_env("TIMEMORY_LLM_MAX_RETRIES", "llm_max_retries"))

    # --- pipeline ------------------------------------------------------------------------------------------------
    similar_k: int = Field(default=5, validation_alias=_env("TIMEMORY_SIMILAR_K", "similar_k"))
    similarity_threshold: float = Field(
        default=0.35, validation_alias=_env("TIMEMORY_SIMILARITY_THRESHOLD", "similarity_threshold")
    )
    max_content_chars: int = Field(
        default=32_000, validation_alias=_env("TIMEMORY_MAX_CONTENT_CHARS", "max_content_chars")
    )

    embed_batching: bool = Field(
        default=True, validation_alias=_env("TIMEMORY_EMBED_BATCHING", "embed_batching"),
        description="texts embedded at the same time by several threads go to the encoder in one call",
    )

    # --- search cache --------------------------------------------------------------------------------------------
    cache_mb: int = Field(
        default=1024, ge=1, validation_alias=_env("TIMEMORY_CACHE_MB", "cache_mb"),
        description="RAM for each cache of users' vectors and keyword indexes (memories, episodes), least recently "
                    "used users first out",
    )
    approximate_from: int = Field(
        default=50_000, ge=0, validation_alias=_env("TIMEMORY_APPROXIMATE_FROM", "approximate_from"),
        description="memories from which a user gets an HNSW graph for candidates (0: always exact)",
    )

    # --- service -------------------------------------------------------------------------------------------------
    service_routes_open: bool = Field(
        default=False, validation_alias=_env("TIMEMORY_SERVICE_ROUTES_OPEN", "service_routes_open"),
        description="/metrics, the API docs and /healthz's details answer without a key even where keys exist",
    )

    # --- derived -------------------------------------------------------------------------------------------------
    @property
    def llm_provider(self) -> LLMProvider:
        if self.openai_base_url:
            return "openai-compatible"
        if self.openai_api_key:
            return "openai"
        return "local"

    @property
    def resolved_llm_model(self) -> str:
        if self.llm_model:
            return self.llm_model
        return DEFAULT_OPENAI_LLM if self.llm_provider == "openai" else LOCAL

    @property
    def resolved_embedding_model(self) -> str:
        if self.embedding_model:
            return self.embedding_model
        return DEFAULT_OPENAI_EMBEDDING if self.llm_provider == "openai" else LOCAL

    @property
    def uses_tidb(self) -> bool:
        return self.database_url is None and bool(self.tidb_host)

    def sqlalchemy_url(self) -> str:
        """The database URL: explicit URL, else TiDB parameters, else the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        if self.tidb_host:
            user = quote_plus(self.tidb_user or "root")
            password = self.tidb_password.get_secret_value() if self.tidb_password else ""
            auth = f"{user}:{quote_plus(password)}" if password else user
            return f"mysql+pymysql://{auth}@{self.tidb_host}:{self.tidb_port}/{self.tidb_database}?charset=utf8mb4"
        return f"sqlite:///{(self.data_dir / 'timemory.db').as_posix()}"

    def connect_args(self) -> dict[str, object]:
        """Driver arguments. TiDB always gets TLS, verified against TIDB_SSL_CA or the system CA bundle."""
        if not self.uses_tidb:
            return {}
        if not self.tidb_ssl_verify:
            log.warning("TIDB_SSL_VERIFY=false: the TiDB connection is encrypted but the server is NOT verified")
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return {"ssl": ctx}
        ctx = ssl.create_default_context(cafile=self.tidb_ssl_ca) if self.tidb_ssl_ca else ssl.create_default_context()
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        return {"ssl": ctx}

    def describe_database(self) -> str:
        """A human label for the database in use, never containing a password."""
        if self.uses_tidb:
            return f"TiDB {self.tidb_host}:{self.tidb_port}/{self.tidb_database} (TLS)"
        from sqlalchemy.engine import make_url

        url = make_url(self.sqlalchemy_url())
        if url.get_backend_name() == "sqlite":
            return f"SQLite {url.database or ':memory:'}"
        return url.render_as_string(hide_password=True)
