"""Episodes: every stored message of a user, searchable beside the memories learnt from it.

An extraction that misses a detail loses it from the memories, not from the conversation: the message is still
stored. So each message is indexed under two kinds of key (LongMemEval's "fact-augmented key expansion"):

- **meaning**: its own vector and the vectors of the memories learnt from it; its cosine to a query is the best of
  them, so a short reply ("Yes, every Sunday") is found by the fact it taught ("Goes to church on Sundays");
- **words**: BM25 over its own text followed by the text of those memories.

Each session's current summary is an episode too (speaker "summary"), found by its own text and vector.

Both are ranked by the same fusion as memories (:func:`timemory.search._ranking.fuse`). A user's index is cached and
kept while the user's memory version, message count, last message and last summary are what it was built from; new
messages are appended (only their vectors are read or computed), anything else rebuilds the keys from the cached
vectors.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from timemory.schemas import Episode, LearntMemory, ScoreBreakdown, SearchHit, SearchMode
from timemory.search._cache import MAX_BYTES, MAX_USERS, UserCache
from timemory.search._kernels import bm25_of, dot_rows
from timemory.search._keyword import KeywordIndex, term_words
from timemory.search._levers import EpisodeLevers, expanded_query, named_in, with_neighbours
from timemory.search._ranking import (
    KEYWORD_WEIGHT,
    Ranked,
    fuse,
    fuse_scores,
    rank_keyword,
    rank_vector,
    top_indices,
)
from timemory.store import EpisodeState, Learnt, Store

Embed = Callable[[list[str]], np.ndarray]  # unit vectors, one row per text
# Messages embedded by one search at most, newest first: a user's first search after importing thousands of
# messages answers in about a second, found by words and by their facts until every message has its vector.
EMBED_PER_SEARCH = 256
# What the LoCoMo study keeps on (strength chosen on two conversations, gains measured on three others:
# docs/benchmarks.md §12). Neighbours gain turn recall but lose session recall there, and lift a user's question
# above the statement it asks about (the answer next to it scores high), so they stay a choice; query expansion
# gained nothing and stays off.
DEFAULT_LEVERS = EpisodeLevers(speakers=0.45)


Mark = tuple[int, int, int, int]  # (memory version, message count, last message seq, last summary seq)


@dataclass
class EpisodeEntry:
    user_id: str
    mark: Mark  # what it was built from
    message_states: list[EpisodeState]
    states: list[EpisodeState]  # the messages, then the sessions' current summaries
    matrix: np.ndarray  # (n, d) the messages' own unit vectors
    learnt: list[list[Learnt]]  # per message, the memories learnt from it
    facts: np.ndarray  # (f, d) the vectors of those memories, one row per (message, memory) link
    owners: np.ndarray  # (f,) the message row of each fact row
    keywords: KeywordIndex = field(default_factory=KeywordIndex)
    rows: dict[str, int] = field(default_factory=dict)  # message id -> row
    unembedded: int = 0  # messages still without a vector (their own cosine counts as 0 until a later search)

    @property
    def n(self) -> int:
        return len(self.states)

    @property
    def nbytes(self) -> int:
        """What the cache holds for this user: vectors, keyword index and texts (roughly)."""
        texts = sum(len(s.content) + 200 for s in self.states)
        return int(self.matrix.nbytes + self.facts.nbytes) + self.keywords.nbytes + texts

    def episode(self, row: int) -> Episode:
        s = self.states[row]
        return Episode(message_id=s.message_id, user_id=self.user_id, session_id=s.session_id, speaker=s.role,  # type: ignore[arg-type]
                       content=s.content, created_at=s.created_at, name=s.name,
                       learnt=[LearntMemory(id=m.memory_id, content=m.content, type=m.type,  # type: ignore[arg-type]
                                            status=m.status) for m in self.learnt[row]])  # type: ignore[arg-type]


class EpisodeIndex:
    """Each user's episodes, cached (LRU over users) and ranked in this process on every backend."""

    def __init__(self, store: Store, max_users: int = MAX_USERS, max_bytes: int = MAX_BYTES,
                 levers: EpisodeLevers = DEFAULT_LEVERS) -> None:
        self.store = store
        self.levers = levers
        self.cache: UserCache[EpisodeEntry] = UserCache(max_users, max_bytes)
        self.embed_per_search = EMBED_PER_SEARCH
        # A write that does not say what it touched (an erasure, a restore) drops the user's cached messages at once.
        store.db.on_user_write(lambda write: self.invalidate(write.user_id) if write.from_version is None else None)

    def invalidate(self, user_id: str | None = None) -> None:
        self.cache.invalidate(user_id)

    def with_levers(self, levers: EpisodeLevers) -> EpisodeIndex:
        """The same index and cache, ranking with other levers."""
        other = copy.copy(self)
        other.levers = levers
        return other

    def entry(self, user_id: str, embed: Embed) -> EpisodeEntry:
        """The user's current episodes, loading or extending the cached ones as the database says."""
        mark = self.store.episodes.mark(user_id)
        cached = self.cache.get(user_id)
        if cached is not None and cached.mark == mark and not cached.unembedded:
            return cached
        messages = self._embedded(user_id, self._states(user_id, cached, mark), embed)
        entry = build(user_id, mark, messages, self._summaries(user_id, embed), self.store.episodes.learnt(user_id),
                      self.store.dim)
        self.cache.put(user_id, entry)
        return entry

    def _states(self, user_id: str, cached: EpisodeEntry | None, mark: Mark) -> list[EpisodeState]:
        """The user's messages now: the cached ones when only memories or summaries changed, the cached ones and
        those stored after them when messages were only added, else all of them read again."""
        if cached is None:
            return self.store.episodes.states(user_id)
        known = cached.message_states
        if cached.mark[1:3] == mark[1:3]:
            return known
        if known and mark[1] > len(known):
            new = self.store.episodes.states(user_id, after_seq=known[-1].seq)
            if len(known) + len(new) == mark[1]:
                return known + new
        return self.store.episodes.states(user_id)

    def _summaries(self, user_id: str, embed: Embed) -> list[EpisodeState]:
        """Each session's current summary as an episode (its vector embedded now if it was never kept)."""
        out = []
        for summary in self.store.summaries.current(user_id):
            vector = summary.vector
            if vector is None:
                vector = np.asarray(embed([summary.content]), np.float32)[0]
                self.store.summaries.save_vector(summary.seq, vector)
            out.append(EpisodeState(seq=-summary.seq, message_id=f"summary-{summary.seq}",
                                    session_id=summary.session_id, role="summary", content=summary.content,
                                    created_at=summary.created_at, vector=vector))
        return out

    def _embedded(self, user_id: str, states: list[EpisodeState], embed: Embed) -> list[EpisodeState]:
        """``states`` with vectors: up to ``embed_per_search`` of those never embedded, newest first, are
        embedded now (one call) and saved."""
        missing = [i for i, s in enumerate(states) if s.vector is None][::-1][: self.embed_per_search]
        if not missing:
            return states
        out = list(states)
        vectors = np.asarray(embed([out[i].content for i in missing]), np.float32)
        for i, v in zip(missing, vectors, strict=True):
            out[i] = replace(out[i], vector=v)
        self.store.episodes.save_vectors(user_id, {out[i].seq: vectors[j] for j, i in enumerate(missing)})
        return out

    def find(self, entry: EpisodeEntry, query: str, vector: np.ndarray | None, k: int, *,
             mode: SearchMode, levers: EpisodeLevers | None = None) -> list[SearchHit]:
        """Top-k episodes of a user's ``entry`` (:meth:`entry`) for one query by ``mode`` (``vector``: the query's
        unit vector, None in keyword mode), with this index's :mod:`levers <timemory.search._levers>` unless
        ``levers`` are given (they apply in vector and hybrid mode)."""
        if entry.n == 0 or k <= 0:
            return []
        levers = self.levers if levers is None else levers
        words = term_words(query)
        rows, bm25 = entry.keywords.scores(list(words), entry.n) if words else (np.zeros(0, np.int64),
                                                                                  np.zeros(0, np.float32))
        dense = bm25_of(entry.n, rows, bm25)
        if mode == "keyword":
            ranked = rank_keyword(rows, bm25, k)
            cosine = expanded_cosine(entry, vector) if vector is not None else None
            for r in ranked:
                r.breakdown.vector = float(cosine[r.row]) if cosine is not None else None
        else:
            assert vector is not None
            best_bm25 = float(bm25.max()) if len(bm25) else 0.0
            cosine = expanded_cosine(entry, vector)
            everything = np.arange(entry.n)
            if levers.any:
                ranked = ranked_with_levers(entry, query, vector, cosine, dense, best_bm25, k, mode, levers)
            else:
                ranked = (fuse(everything, cosine, dense, best_bm25, k) if mode == "hybrid"
                          else rank_vector(everything, cosine, k, dense))
        return [EpisodeIndex._hit(entry, r, words) for r in ranked]

    @staticmethod
    def _hit(entry: EpisodeEntry, r: Ranked, words: dict[str, str]) -> SearchHit:
        r.breakdown.matched_terms = [words[t] for t in entry.keywords.matched(r.row, list(words))]
        return SearchHit(kind="episode", episode=entry.episode(r.row), score=r.breakdown.fused, scores=r.breakdown)

    @staticmethod
    def sources(entry: EpisodeEntry, memories: Sequence[SearchHit]) -> list[SearchHit]:
        """Memory hits with their source episodes filled in (from a user's ``entry``)."""
        out = []
        for hit in memories:
            assert hit.memory is not None
            rows = [entry.rows[mid] for mid in hit.memory.source_message_ids if mid in entry.rows]
            out.append(hit.model_copy(update={"sources": [entry.episode(row) for row in rows]}))
        return out


def build(user_id: str, mark: Mark, messages: list[EpisodeState], summaries: list[EpisodeState],
          learnt: list[Learnt], dim: int) -> EpisodeEntry:
    states = messages + summaries
    rows = {s.message_id: i for i, s in enumerate(states)}
    per_row: list[list[Learnt]] = [[] for _ in states]
    for memory in learnt:
        for mid in dict.fromkeys(memory.source_message_ids):
            row = rows.get(mid)
            if row is not None:
                per_row[row].append(memory)
    links = [(row, m) for row, ms in enumerate(per_row) for m in ms if m.vector is not None and len(m.vector) == dim]
    blank = np.zeros(dim, np.float32)
    matrix = (np.vstack([blank if s.vector is None else s.vector for s in states]).astype(np.float32, copy=False)
              if states else np.zeros((0, dim), np.float32))
    facts = (np.vstack([m.vector for _, m in links]).astype(np.float32, copy=False) if links
             else np.zeros((0, dim), np.float32))
    texts = [" ".join([s.content, *(m.content for m in per_row[i])]) for i, s in enumerate(states)]
    return EpisodeEntry(user_id=user_id, mark=mark, message_states=messages, states=states,
                        matrix=np.ascontiguousarray(matrix), learnt=per_row, facts=np.ascontiguousarray(facts),
                        owners=np.array([row for row, _ in links], np.int64), keywords=KeywordIndex.build(texts),
                        rows=rows, unembedded=sum(s.vector is None for s in messages))


def ranked_with_levers(entry: EpisodeEntry, query: str, vector: np.ndarray, cosine: np.ndarray, bm25: np.ndarray,
                       best_bm25: float, k: int, mode: SearchMode, levers: EpisodeLevers) -> list[Ranked]:
    """The top k by the fused (or vector) score with the levers applied; each hit's ``fused`` is its final score."""
    def base(cos: np.ndarray) -> np.ndarray:
        return fuse_scores(cos, bm25, best_bm25) if mode == "hybrid" else cos.astype(np.float32)

    scores = base(cosine)
    if levers.expansion:
        cosine = expanded_cosine(entry, expanded_query(vector, entry.matrix, scores, levers))
        scores = base(cosine)
    plain = scores
    if levers.speakers:
        scores = scores + levers.speakers * named_in(query, [s.name for s in entry.states])
    if levers.neighbours:
        scores = with_neighbours(scores, [None if s.role == "summary" else s.session_id for s in entry.states],
                                 levers.neighbours)
    keyword = bm25 / best_bm25 if best_bm25 > 0 else np.zeros_like(bm25)
    weight = KEYWORD_WEIGHT if mode == "hybrid" else 0.0
    return [Ranked(int(i), ScoreBreakdown(mode=mode, vector=float(cosine[i]), keyword=float(bm25[i]),
                                          keyword_norm=float(keyword[i]) if mode == "hybrid" else None,
                                          vector_weight=1.0 - weight if mode == "hybrid" else None,
                                          keyword_weight=weight if mode == "hybrid" else None,
                                          fused=float(scores[i]), levers=float(scores[i] - plain[i])))
            for i in top_indices(scores, k)]


def expanded_cosine(entry: EpisodeEntry, query: np.ndarray) -> np.ndarray:
    """Each episode's cosine to ``query``: the best of its own vector and the vectors of the memories learnt from
    it."""
    cosine = dot_rows(entry.matrix, query)
    if len(entry.facts):
        np.maximum.at(cosine, entry.owners, dot_rows(entry.facts, query))
    return cosine
