"""Chat with memory: sessions, a streamed reply grounded in the user's memories, then the pipeline on the exchange."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

from .errors import ChatError, LLMError, TiMemoryError, ValidationError
from .llm import LLM, Usage
from .pipeline import TiMem
from .prompts import CHAT_MEMORY_BLOCK, CHAT_NO_MEMORY, CHAT_SYSTEM_PROMPT, TITLE_PROMPT
from .schemas import ChatSession, ChatTitle, Message, PipelineResult, SearchHit

log = logging.getLogger(__name__)

DEFAULT_TITLE = "New chat"


class ChatTurn:
    """One exchange. Iterate it for the reply's tokens; afterwards its fields say what happened."""

    def __init__(self, service: ChatService, user_id: str, session: ChatSession, text: str, process: bool) -> None:
        self._service = service
        self.user_id = user_id
        self.session = session
        self.text = text
        self.process = process
        self.memories_used: list[SearchHit] = []
        self.reply = ""
        self.user_message: Message | None = None
        self.assistant_message: Message | None = None
        self.pipeline: PipelineResult | None = None
        self.title: str | None = None
        self.usage = Usage()
        self._started = False

    @property
    def session_id(self) -> str:
        return self.session.id

    def __iter__(self) -> Iterator[str]:
        if self._started:
            raise ChatError("A chat turn can be streamed once.")
        self._started = True
        yield from self._service._run_turn(self)


class ChatService:
    def __init__(self, memory: TiMem, llm: LLM, *, memory_k: int = 5, history_messages: int = 10) -> None:
        self.memory = memory
        self.llm = llm
        self.memory_k = memory_k
        self.history_messages = history_messages

    # ------------------------------------------------------------------ sessions
    def create_session(self, user_id: str, title: str = DEFAULT_TITLE) -> ChatSession:
        return self.memory.store.create_session(user_id, title)

    def list_sessions(self, user_id: str) -> list[ChatSession]:
        return self.memory.store.list_sessions(user_id)

    def rename_session(self, user_id: str, session_id: str, title: str) -> ChatSession:
        if not title.strip():
            raise ValidationError("A session title cannot be empty.")
        return self.memory.store.rename_session(user_id, session_id, title)

    def delete_session(self, user_id: str, session_id: str) -> None:
        self.memory.store.delete_session(user_id, session_id)

    def messages(self, user_id: str, session_id: str) -> list[Message]:
        return self.memory.store.list_messages(user_id, session_id)

    # ------------------------------------------------------------------ a turn
    def chat_with_memory_stream(
        self, user_id: str, session_id: str | None, text: str, *, process: bool = True
    ) -> ChatTurn:
        """Start a turn: the session is created on the first message. Iterate the result for tokens.

        With ``process=False`` the caller runs :meth:`process_turn` itself (e.g. in a background thread).
        """
        text = self.memory.check_content(text, "message")
        session = (
            self.memory.store.get_session(user_id, session_id)
            if session_id
            else self.create_session(user_id, DEFAULT_TITLE)
        )
        return ChatTurn(self, user_id, session, text, process)

    def _system_prompt(self, hits: list[SearchHit]) -> str:
        if hits:
            lines = "\n".join(f"- [{h.memory.type}] {h.memory.content}" for h in hits)
            block = CHAT_MEMORY_BLOCK.format(memories=lines)
        else:
            block = CHAT_NO_MEMORY
        return CHAT_SYSTEM_PROMPT.format(today=datetime.now(UTC).date().isoformat(), memory_block=block)

    def _run_turn(self, turn: ChatTurn) -> Iterator[str]:
        store = self.memory.store
        history = store.list_messages(turn.user_id, turn.session_id, limit=self.history_messages)
        first_exchange = not history
        turn.user_message = store.save_messages(
            turn.user_id, turn.session_id, [{"role": "user", "content": turn.text, "id": str(uuid.uuid4())}]
        )[0]
        try:
            turn.memories_used = self.memory.search(turn.text, turn.user_id, limit=self.memory_k)
        except TiMemoryError as exc:
            log.warning("memory search failed; answering without memories: %s", exc)
        prompt = [
            {"role": "system", "content": self._system_prompt(turn.memories_used)},
            *({"role": m.role, "content": m.content} for m in history if m.role in ("user", "assistant")),
            {"role": "user", "content": turn.text},
        ]
        parts: list[str] = []
        try:
            for token in self.llm.stream(prompt, usage=turn.usage):
                parts.append(token)
                yield token
        except LLMError as exc:
            raise ChatError(f"The reply failed: {exc}. Your message was saved.") from exc
        turn.reply = "".join(parts).strip() or "…"
        turn.assistant_message = store.save_messages(
            turn.user_id, turn.session_id, [{"role": "assistant", "content": turn.reply, "id": str(uuid.uuid4())}]
        )[0]
        if first_exchange and turn.session.title == DEFAULT_TITLE:
            turn.title = self._title(turn)
        if turn.process:
            self.process_turn(turn)

    def process_turn(self, turn: ChatTurn) -> PipelineResult:
        """Run the memory pipeline on the turn's two messages (already stored: provenance is kept)."""
        if turn.user_message is None or turn.assistant_message is None:
            raise ChatError("The turn has not finished streaming yet.")
        messages = [
            {"role": "user", "content": turn.user_message.content, "id": turn.user_message.id},
            {"role": "assistant", "content": turn.assistant_message.content, "id": turn.assistant_message.id},
        ]
        turn.pipeline = self.memory.process_messages(messages, turn.user_id, turn.session_id)
        return turn.pipeline

    def _title(self, turn: ChatTurn) -> str:
        fallback = " ".join(turn.text.split()[:6])[:60] or DEFAULT_TITLE
        try:
            answer = self.llm.parse(
                [{"role": "user", "content": TITLE_PROMPT.format(user=turn.text[:500], assistant=turn.reply[:500])}],
                ChatTitle,
                usage=turn.usage,
            )
            title = " ".join(answer.title.split()).strip("\"' ")[:60] or fallback
        except TiMemoryError as exc:
            log.info("title generation failed (%s); using the first words", exc)
            title = fallback
        try:
            turn.session = self.memory.store.rename_session(turn.user_id, turn.session_id, title)
        except TiMemoryError as exc:
            log.warning("could not save the session title: %s", exc)
        return title
