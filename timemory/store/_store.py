"""The store: one database and the repositories over it, composed (each repository owns one kind of row).

``store.memories`` (memories, vectors, events), ``store.users``, ``store.conversations`` (sessions and messages),
``store.episodes`` (messages as search reads them), ``store.summaries`` (rolling session summaries),
``store.runs`` (pipeline traces), ``store.jobs`` (the durable queue), ``store.keys`` (API keys),
``store.experiments`` and ``store.answers`` (the lab's answer cache). One class over SQLAlchemy serves SQLite,
MySQL-protocol servers and TiDB; concurrency is described in ``database.py``. Searching lives in
:mod:`timemory.search`, which listens to the writes made here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from timemory.store._answers import AnswerRepository
from timemory.store._connection import Backend, make_engine
from timemory.store._conversations import ConversationRepository
from timemory.store._database import Database
from timemory.store._episodes import EpisodeRepository
from timemory.store._erasure import Erasure
from timemory.store._experiments import ExperimentRepository
from timemory.store._jobs import JobQueue
from timemory.store._keys import ApiKeys
from timemory.store._memories import MemoryRepository
from timemory.store._runs import RunRepository
from timemory.store._summaries import SummaryRepository
from timemory.store._users import UserRepository


class Store:
    def __init__(
        self,
        engine: Engine,
        *,
        embedding_model: str,
        embedding_dim: int,
        vector_index: bool = False,
        check_embedding_model: bool = True,
    ) -> None:
        self.db = Database(engine, embedding_dim=embedding_dim, vector_index=vector_index)
        self.users = UserRepository(self.db)
        self.memories = MemoryRepository(self.db, embedding_model=embedding_model, embedding_dim=embedding_dim)
        self.conversations = ConversationRepository(self.db, self.users)
        self.episodes = EpisodeRepository(self.db, embedding_dim)
        self.summaries = SummaryRepository(self.db, embedding_dim)
        self.runs = RunRepository(self.db)
        self.jobs = JobQueue(self.db, self.users)
        self.keys = ApiKeys(self.db, self.users)
        self.experiments = ExperimentRepository(self.db)
        self.answers = AnswerRepository(self.db)
        self.erasure = Erasure(self.db)
        if check_embedding_model:
            self.memories.check_embedding_model()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        embedding_model: str,
        embedding_dim: int,
        connect_args: dict[str, Any] | None = None,
        vector_index: bool = False,
        check_embedding_model: bool = True,
    ) -> Store:
        return cls(
            make_engine(url, connect_args),
            embedding_model=embedding_model,
            embedding_dim=embedding_dim,
            vector_index=vector_index,
            check_embedding_model=check_embedding_model,
        )

    @property
    def backend(self) -> Backend:
        return self.db.backend

    @property
    def engine(self) -> Engine:
        return self.db.engine

    @property
    def embedding_model(self) -> str:
        return self.memories.embedding_model

    @property
    def dim(self) -> int:
        return self.memories.dim

    def close(self) -> None:
        """Release the database connections."""
        self.db.close()
