"""Conversation datasets for replay and evaluation: TiMemory's own format, LoCoMo and LongMemEval.

Every reader gives the same shape: conversations (each replayed as one user), made of dated sessions of messages
with stable ids, and the questions asked about them with the ids of the messages that hold the answer (evidence).
A malformed file is refused whole, with the file, the item and the field named; nothing is written.

LoCoMo (snap-research/LoCoMo) is a dialogue between two people: each speaker can be replayed as the user, the other
as the assistant, keeping each turn's ``dia_id`` as the message id. LongMemEval (xiaowu0162/LongMemEval) gives each
question its own haystack of sessions: each question is one user.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from timemory._time import as_utc
from timemory.core._transfer import exchanges
from timemory.errors import InvalidInputError

Format = Literal["timemory", "locomo", "longmemeval"]
FORMATS: tuple[str, ...] = ("timemory", "locomo", "longmemeval")
Speaker = Literal["a", "b", "both"]


@dataclass(frozen=True)
class DatasetMessage:
    id: str
    role: Literal["user", "assistant"]
    content: str
    created_at: datetime
    name: str | None = None  # the speaker's name (LoCoMo's two people)

    def as_message(self) -> dict[str, Any]:
        message = {"id": self.id, "role": self.role, "content": self.content, "created_at": self.created_at}
        return message | {"name": self.name} if self.name else message


@dataclass
class DatasetSession:
    key: str  # e.g. "session_3"
    date: datetime
    messages: list[DatasetMessage]

    @property
    def title(self) -> str:
        return f"{self.key} · {self.date:%Y-%m-%d %H:%M}"

    def exchanges(self) -> list[list[DatasetMessage]]:
        """Each user message with the assistant messages that follow it (a leading assistant message joins the
        first)."""
        by_id = {t.id: t for t in self.messages}
        return [[by_id[m["id"]] for m in chunk] for chunk in exchanges([t.as_message() for t in self.messages])]


@dataclass
class Question:
    id: str
    question: str
    answer: str
    evidence: list[str]  # message ids
    category: str
    date: datetime | None = None
    # A question about something that changed: the messages of the earlier, replaced statement (``evidence`` holds
    # the latest one; LongMemEval's knowledge-update questions list both there, so the latest is evidence - old).
    old_evidence: list[str] = field(default_factory=list)

    @property
    def latest_evidence(self) -> list[str]:
        old = set(self.old_evidence)
        return [e for e in self.evidence if e not in old]


@dataclass
class Conversation:
    key: str  # appended to the user prefix: the user id of this conversation
    sessions: list[DatasetSession]
    questions: list[Question] = field(default_factory=list)
    group: str = ""  # conversations replayed from the same source (LoCoMo's two speakers) share their questions

    @property
    def message_count(self) -> int:
        return sum(len(s.messages) for s in self.sessions)


@dataclass
class Dataset:
    path: Path
    format: str
    sha256: str
    conversations: list[Conversation]

    def user_id(self, prefix: str, conversation: Conversation) -> str:
        return f"{prefix}{conversation.key}"


def load_dataset(path: Path | str, fmt: str, *, speaker: str = "both") -> Dataset:
    path = Path(path)
    if fmt not in FORMATS:
        raise InvalidInputError(f"Unknown dataset format '{fmt}'. Use one of: {', '.join(FORMATS)}.")
    if speaker not in ("a", "b", "both"):
        raise InvalidInputError(f"Unknown speaker '{speaker}'. Use a, b or both.")
    try:
        raw = path.read_bytes()
        data = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"Cannot read {path}: {exc}") from exc
    reader = _Reader(path)
    if fmt == "locomo":
        conversations = reader.locomo(data, speaker)
    elif fmt == "longmemeval":
        conversations = reader.longmemeval(data)
    else:
        conversations = reader.timemory(data)
    if not conversations or not any(c.sessions for c in conversations):
        raise InvalidInputError(f"{path}: no conversations with messages in this {fmt} file.")
    return Dataset(path=path, format=fmt, sha256=hashlib.sha256(raw).hexdigest(), conversations=conversations)


# "1:56 pm on 8 May, 2023" (LoCoMo), "2023/05/20 (Sat) 02:21" (LongMemEval), or ISO.
_LOCOMO_DATE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*([ap]m)\s+on\s+(\d{1,2})\s+([A-Za-z]+),?\s+(\d{4})\s*$", re.I)
_LME_DATE = re.compile(r"^\s*(\d{4})/(\d{2})/(\d{2})\s*(?:\([A-Za-z]+\))?\s*(\d{1,2}):(\d{2})\s*$")
_MONTHS = {m: i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
     "december"], start=1)}


def parse_date(text: Any) -> datetime:
    """A dataset's session date as an aware UTC datetime; ValueError when it is none of the known forms."""
    if not isinstance(text, str):
        raise ValueError(f"not a date: {text!r}")
    if m := _LOCOMO_DATE.match(text):
        hour, minute, ampm, day, month, year = m.groups()
        month_no = _MONTHS.get(month.lower()) or next(
            (n for name, n in _MONTHS.items() if name.startswith(month.lower()[:3])), None)
        if month_no is None:
            raise ValueError(f"unknown month in {text!r}")
        h = int(hour) % 12 + (12 if ampm.lower() == "pm" else 0)
        return datetime(int(year), month_no, int(day), h, int(minute), tzinfo=UTC)
    if m := _LME_DATE.match(text):
        year, month, day, hour, minute = (int(g) for g in m.groups())
        return datetime(year, month, day, hour, minute, tzinfo=UTC)
    parsed = datetime.fromisoformat(text.strip())
    return as_utc(parsed)


class _Reader:
    """Checks as it reads, so every error names the file, the item and the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, problem: str) -> InvalidInputError:
        return InvalidInputError(f"{self.path}: {where}: {problem}")

    def field(self, obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
        if not isinstance(obj, dict):
            raise self.fail(where, "expected an object")
        if key not in obj:
            raise self.fail(where, f"missing field '{key}'")
        value = obj[key]
        if not isinstance(value, kind):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise self.fail(where, f"field '{key}' should be {names}, not {type(value).__name__}")
        return value

    def date(self, value: Any, where: str) -> datetime:
        try:
            return parse_date(value)
        except ValueError as exc:
            raise self.fail(where, f"unreadable date {value!r}") from exc

    # -- LoCoMo --------------------------------------------------------------------------------------------------------
    def locomo(self, data: Any, speaker: str) -> list[Conversation]:
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list):
            raise self.fail("file", "expected a list of LoCoMo samples")
        out: list[Conversation] = []
        for n, sample in enumerate(data):
            where = f"sample {n}"
            conv = self.field(sample, "conversation", dict, where)
            sample_id = str(sample.get("sample_id") or f"sample-{n}")
            where = f"sample {sample_id}"
            names = {"a": self.field(conv, "speaker_a", str, f"{where}.conversation"),
                     "b": self.field(conv, "speaker_b", str, f"{where}.conversation")}
            keys = sorted((k for k in conv if re.fullmatch(r"session_\d+", k)), key=lambda k: int(k.split("_")[1]))
            raw_sessions = []
            for key in keys:
                turns = self.field(conv, key, list, f"{where}.conversation")
                date = self.date(self.field(conv, f"{key}_date_time", str, f"{where}.conversation"),
                                 f"{where}.conversation.{key}_date_time")
                checked = []
                for i, t in enumerate(turns):
                    tw = f"{where}.conversation.{key}[{i}]"
                    name = self.field(t, "speaker", str, tw)
                    if name not in names.values():
                        raise self.fail(tw, f"speaker '{name}' is neither speaker_a nor speaker_b")
                    text = self.field(t, "text", str, tw)
                    if t.get("blip_caption"):
                        text = f"{text} [shares an image: {t['blip_caption']}]".strip()
                    checked.append((self.field(t, "dia_id", str, tw), name, text))
                raw_sessions.append((key, date, checked))
            questions = self.locomo_questions(sample.get("qa", []), where)
            for letter in (("a", "b") if speaker == "both" else (speaker,)):
                me = names[letter]
                sessions = [DatasetSession(key, date, [
                    DatasetMessage(dia_id, "user" if name == me else "assistant", text, date, name)
                    for dia_id, name, text in turns if text.strip()]) for key, date, turns in raw_sessions]
                out.append(Conversation(key=f"{sample_id}-{letter}", sessions=[s for s in sessions if s.messages],
                                        questions=questions, group=sample_id))
        return out

    def locomo_questions(self, qa: Any, where: str) -> list[Question]:
        if not isinstance(qa, list):
            raise self.fail(f"{where}.qa", "expected a list")
        out = []
        for i, q in enumerate(qa):
            qw = f"{where}.qa[{i}]"
            question = self.field(q, "question", str, qw)
            answer = q.get("answer", q.get("adversarial_answer", ""))
            evidence = q.get("evidence", [])
            if not isinstance(evidence, list):
                raise self.fail(qw, "field 'evidence' should be a list of dia_ids")
            ids = [part for e in evidence for part in re.split(r"[;,\s]+", str(e)) if part]
            out.append(Question(id=f"{where.split(' ', 1)[1]}:q{i}", question=question, answer=str(answer),
                                evidence=ids, category=str(q.get("category", "none"))))
        return out

    # -- LongMemEval ---------------------------------------------------------------------------------------------------
    def longmemeval(self, data: Any) -> list[Conversation]:
        if not isinstance(data, list):
            raise self.fail("file", "expected a list of LongMemEval items")
        out = []
        for n, item in enumerate(data):
            where = f"item {n}"
            qid = str(self.field(item, "question_id", (str, int), where))
            where = f"item {qid}"
            ids = self.field(item, "haystack_session_ids", list, where)
            dates = self.field(item, "haystack_dates", list, where)
            sessions = self.field(item, "haystack_sessions", list, where)
            if not len(ids) == len(dates) == len(sessions):
                raise self.fail(where, "haystack_session_ids, haystack_dates and haystack_sessions differ in length")
            answer_sessions = {str(s) for s in item.get("answer_session_ids", [])}
            built, evidence, by_session = [], [], []
            for sid, date_text, turns in zip(ids, dates, sessions, strict=True):
                sw = f"{where}.haystack_sessions[{sid}]"
                date = self.date(date_text, f"{where}.haystack_dates[{sid}]")
                if not isinstance(turns, list):
                    raise self.fail(sw, "expected a list of turns")
                session_turns = []
                for i, t in enumerate(turns):
                    role = self.field(t, "role", str, f"{sw}[{i}]")
                    if role not in ("user", "assistant"):
                        raise self.fail(f"{sw}[{i}]", f"role '{role}' is neither user nor assistant")
                    content = self.field(t, "content", str, f"{sw}[{i}]")
                    if content.strip():
                        session_turns.append(DatasetMessage(f"{sid}:{i}", role, content, date))  # type: ignore[arg-type]
                if str(sid) in answer_sessions:
                    evidence += [t.id for t in session_turns]
                    by_session.append((date, [t.id for t in session_turns]))
                built.append(DatasetSession(str(sid), date, session_turns))
            built.sort(key=lambda s: s.date)
            category = str(item.get("question_type", "none"))
            by_session.sort(key=lambda s: s[0])  # a knowledge update: the latest answer session replaces the others
            old = [i for _, ids_ in by_session[:-1] for i in ids_] if category == "knowledge-update" else []
            question = Question(
                id=qid, question=str(self.field(item, "question", str, where)), answer=str(item.get("answer", "")),
                evidence=evidence, category=category, old_evidence=old,
                date=self.date(item["question_date"], f"{where}.question_date") if item.get("question_date") else None,
            )
            out.append(Conversation(key=qid, sessions=[s for s in built if s.messages], questions=[question],
                                    group=qid))
        return out

    # -- TiMemory's own format -----------------------------------------------------------------------------------------
    def timemory(self, data: Any) -> list[Conversation]:
        """A list of messages, a list of sessions ({"date", "messages"}), or {"sessions": [...], "questions": [...]}
        with questions {"question", "answer", "evidence": [message ids], "category"}; a question about something
        that changed adds ``"kind": "update"`` and ``"old_evidence"``: the messages of the replaced statement."""
        questions_raw: Any = []
        if isinstance(data, dict):
            questions_raw = data.get("questions", [])
            data = self.field(data, "sessions", list, "file")
        if not isinstance(data, list) or not data:
            raise self.fail("file", "expected a non-empty list of messages or of sessions")
        if all(isinstance(x, dict) and "role" in x for x in data):
            data = [{"messages": data}]
        sessions = []
        for n, sess in enumerate(data):
            where = f"session {n}"
            messages = self.field(sess, "messages", list, where)
            date = self.date(sess["date"], f"{where}.date") if sess.get("date") else datetime.now(UTC)
            turns = []
            for i, m in enumerate(messages):
                mw = f"{where}.messages[{i}]"
                role = self.field(m, "role", str, mw)
                if role not in ("user", "assistant"):
                    raise self.fail(mw, f"role '{role}' is neither user nor assistant")
                when = self.date(m["created_at"], f"{mw}.created_at") if m.get("created_at") else date
                turns.append(DatasetMessage(str(m.get("id") or f"s{n}:{i}"), role, self.field(m, "content", str, mw),  # type: ignore[arg-type]
                                  when))
            sessions.append(DatasetSession(str(sess.get("title") or f"session_{n + 1}"), date, turns))
        if not isinstance(questions_raw, list):
            raise self.fail("questions", "expected a list")
        questions = []
        for i, q in enumerate(questions_raw):
            qw = f"questions[{i}]"
            evidence = self.field(q, "evidence", list, qw)
            old = self.field(q, "old_evidence", list, qw) if q.get("kind") == "update" else []
            if q.get("kind") == "update" and not old:
                raise self.fail(qw, 'a question of kind "update" lists the replaced statement\'s messages in '
                                    '"old_evidence"')
            questions.append(Question(id=str(q.get("id", f"q{i}")), question=self.field(q, "question", str, qw),
                                      answer=str(q.get("answer", "")), evidence=[str(e) for e in evidence],
                                      category=str(q.get("category", "none")),
                                      old_evidence=[str(e) for e in old]))
        return [Conversation(key="", sessions=sessions, questions=questions, group="")]
