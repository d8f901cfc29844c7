"""Isolation, property-tested: random sequences of add / update / delete / status / search / process for several
users. No call made with one user's id ever returns or changes another user's rows, even with a guessed memory id."""

from __future__ import annotations

import itertools
import uuid

import pytest
from doubles import HashEmbedderDouble, ScriptedLLMDouble
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from timemory import NotFoundError, TiMem
from timemory.store import Store

WORDS = ["tennis", "Lisbon", "cat", "jazz", "nurse", "peanuts", "Osaka", "chess", "tea", "marathon", "' OR 1=1 --",
         "%", "_", "<b>x</b>", "Ünïcödé", "🙂"]
text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(lambda w: "The user likes " + " ".join(w))
counter = itertools.count()


def machine_for(store: Store) -> type[RuleBasedStateMachine]:
    class Isolation(RuleBasedStateMachine):
        """A model of who owns which memory, checked against the engine after every step."""

        @initialize()
        def setup(self) -> None:
            run = f"r{next(counter)}-{uuid.uuid4().hex[:6]}"
            self.users = [f"{run}-alice", f"{run}-bob", f"{run}-eve"]
            self.owner: dict[str, str] = {}  # memory id -> user
            self.content: dict[str, str] = {}
            self.llm_fact = {"content": "The user likes tea", "type": "preference"}
            self.llm = ScriptedLLMDouble(facts=[self.llm_fact])
            self.tm = TiMem(store, HashEmbedderDouble(), self.llm)

        def _pick(self, pick: int) -> str | None:
            """Any user's memory (so foreign ids are tried as often as own ones), or None before the first add."""
            return sorted(self.owner)[pick % len(self.owner)] if self.owner else None

        def _rows(self, user: str) -> dict[str, str]:
            return {m.id: m.content for m in self.tm.list_memories(user_id=user, limit=10_000)}

        @rule(u=st.integers(0, 2), content=text)
        def add(self, u: int, content: str) -> None:
            m = self.tm.add(content, user_id=self.users[u], type="preference")
            self.owner[m.id], self.content[m.id] = self.users[u], content

        @rule(actor=st.integers(0, 2), pick=st.integers(0, 10_000), content=text)
        def update(self, actor: int, pick: int, content: str) -> None:
            if (mid := self._pick(pick)) is None:
                return
            if self.owner[mid] != self.users[actor]:
                with pytest.raises(NotFoundError):
                    self.tm.update_memory(mid, user_id=self.users[actor], content=content)
            else:
                self.tm.update_memory(mid, user_id=self.users[actor], content=content)
                self.content[mid] = content

        @rule(actor=st.integers(0, 2), pick=st.integers(0, 10_000), status=st.sampled_from(["active", "outdated"]))
        def set_status(self, actor: int, pick: int, status: str) -> None:
            if (mid := self._pick(pick)) is None:
                return
            if self.owner[mid] != self.users[actor]:
                with pytest.raises(NotFoundError):
                    self.tm.set_status([mid], user_id=self.users[actor], status=status)
            else:
                self.tm.set_status([mid], user_id=self.users[actor], status=status)

        @rule(actor=st.integers(0, 2), pick=st.integers(0, 10_000))
        def delete(self, actor: int, pick: int) -> None:
            if (mid := self._pick(pick)) is None:
                return
            if self.owner[mid] != self.users[actor]:
                with pytest.raises(NotFoundError):
                    self.tm.delete_memory(mid, user_id=self.users[actor])
                with pytest.raises(NotFoundError):
                    self.tm.history(mid, user_id=self.users[actor])
            else:
                self.tm.delete_memory(mid, user_id=self.users[actor])
                del self.owner[mid], self.content[mid]

        @rule(actor=st.integers(0, 2), query=text)
        def search(self, actor: int, query: str) -> None:
            hits = self.tm.search(query, user_id=self.users[actor], limit=10, statuses=None)
            assert all(h.memory.user_id == self.users[actor] for h in hits)
            assert all(self.owner.get(h.memory.id) == self.users[actor] for h in hits)

        @rule(actor=st.integers(0, 2), fact=text)
        def process(self, actor: int, fact: str) -> None:
            self.llm_fact["content"] = fact  # the scripted model "extracts" this fact; consolidation answers nothing
            result = self.tm.process_messages([{"role": "user", "content": fact}], user_id=self.users[actor])
            assert all(self.owner.get(c.memory_id) == self.users[actor] for c in result.candidates)
            for change in result.changes:
                if change.event == "ADD":
                    self.owner[change.memory_id] = self.users[actor]
                    self.content[change.memory_id] = fact

        @invariant()
        def each_user_sees_exactly_their_own(self) -> None:
            if not hasattr(self, "users"):
                return
            for user in self.users:
                rows = self._rows(user)
                assert rows == {m: c for m, c in self.content.items() if self.owner[m] == user}
                assert self.tm.count_memories(user_id=user) == len(rows)

    return Isolation


def test_isolation_holds_for_random_call_sequences(store: Store) -> None:
    machine = machine_for(store)
    runs = 25 if store.backend == "sqlite" else 8
    machine.TestCase.settings = settings(max_examples=runs, stateful_step_count=15, deadline=None,
                                         suppress_health_check=list(HealthCheck))
    machine.TestCase().runTest()
