"""Keyword ranking: Okapi BM25 over one user's memories, kept in memory next to the user's vectors.

Why not the database's full-text engine: SQLite FTS5, MariaDB/MySQL FULLTEXT and TiDB's full-text search all
compute term statistics over the whole table, so one user's memories would change another user's scores. An index
per user keeps every statistic (document count, lengths, document frequencies) to that user's own rows, ranks the
same on every backend, and is patched on writes like the vector cache.

Tokens: Unicode words, lower-cased with accents folded ("Kraków" matches "krakow"), English stop words dropped,
words stemmed with the Snowball stemmer; numbers stay whole ("2019", "10").
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import lru_cache

import numpy as np
import Stemmer

K1 = 1.2
B = 0.75
MAX_QUERY_TERMS = 64  # a 10,000-character query is ranked by its first 64 distinct terms

_WORD = re.compile(r"\w+", re.UNICODE)
# English function words; content words that people ask about ("first", "last", "never", "move") are kept.
_STOP_WORDS_TEXT = """
a about above after again against all am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers
herself him himself his how i if in into is it its itself just me more most my myself no nor not of off on once
only or other our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves s t d ll m re ve user users".split(
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())

_stemmer = Stemmer.Stemmer("english")
_stem_lock = threading.Lock()  # a PyStemmer object is not safe to share between threads


@lru_cache(maxsize=200_000)
def _term(word: str) -> str | None:
    folded = "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))
    if folded in STOP_WORDS or word in STOP_WORDS:
        return None
    if folded.isdigit():
        return folded
    with _stem_lock:
        return str(_stemmer.stemWord(folded))


def _term_and_word(text: str) -> Iterator[tuple[str, str]]:
    for word in _WORD.findall(text.lower()):
        term = _term(word)
        if term:
            yield term, word


def terms(text: str) -> list[str]:
    """The index terms of ``text``, in order, repeats kept."""
    return [term for term, _ in _term_and_word(text)]


def term_words(text: str) -> dict[str, str]:
    """The distinct terms of a query (at most :data:`MAX_QUERY_TERMS`, in order), each with the first word of the
    query it came from ("ferri" -> "ferry"), so a match can be shown in the words a person typed."""
    out: dict[str, str] = {}
    for term, word in _term_and_word(text):
        if term not in out:
            if len(out) == MAX_QUERY_TERMS:
                break
            out[term] = word
    return out


def query_terms(text: str) -> list[str]:
    """Distinct terms of a query, at most :data:`MAX_QUERY_TERMS`."""
    return list(term_words(text))


class _Postings:
    """Rows holding one term, with the term's count in the row and the row's generation when it was indexed."""

    __slots__ = ("rows", "tf", "gen")

    def __init__(self) -> None:
        self.rows, self.tf, self.gen = array("i"), array("f"), array("i")


class KeywordIndex:
    """BM25 over the rows of one user's cached matrix (row i = memory i). Rows are added, replaced and removed in
    place; a replaced row keeps stale postings, which the generation check skips."""

    def __init__(self) -> None:
        self._postings: dict[str, _Postings] = {}
        self._df: Counter[str] = Counter()
        self._row_terms: list[tuple[str, ...] | None] = []  # distinct terms per row (None: removed)
        self._lengths = array("f")
        self._gens = array("i")
        self._live = 0
        self._total_length = 0.0
        self._posted = 0  # postings appended, stale ones included (they hold memory until a reload)
        self._lock = threading.Lock()

    @classmethod
    def build(cls, texts: Iterable[str]) -> KeywordIndex:
        """The index of ``texts`` as rows 0, 1, …: the same as setting each row in turn, in one pass that fills
        each term's postings at once (half the time of row-by-row inserts; loading a user pays it)."""
        index = cls()
        rows_of: dict[str, list[int]] = {}
        tf_of: dict[str, list[float]] = {}
        row_terms: list[tuple[str, ...] | None] = []
        lengths: list[float] = []
        for row, text in enumerate(texts):
            counts: dict[str, int] = {}
            for term in terms(text):
                counts[term] = counts.get(term, 0) + 1
            for term, tf in counts.items():
                found = rows_of.get(term)
                if found is None:
                    rows_of[term], tf_of[term] = [row], [float(tf)]
                else:
                    found.append(row)
                    tf_of[term].append(float(tf))
            row_terms.append(tuple(counts))
            lengths.append(float(sum(counts.values())))
        for term, rows in rows_of.items():
            postings = index._postings[term] = _Postings()
            postings.rows, postings.tf = array("i", rows), array("f", tf_of[term])
            postings.gen = array("i", [1]) * len(rows)
            index._df[term] = len(rows)
            index._posted += len(rows)
        index._row_terms = row_terms
        index._lengths = array("f", lengths)
        index._gens = array("i", [1]) * len(row_terms)
        index._live = len(row_terms)
        index._total_length = float(sum(lengths))
        return index

    @property
    def documents(self) -> int:
        return self._live

    @property
    def nbytes(self) -> int:
        """About what the index holds: 12 bytes a posting in its arrays and 8 in its row's term tuple, about 500 a
        distinct term (dict entries, arrays, the string) and 72 a row (checked with tracemalloc in bench/scale.py)."""
        return 20 * self._posted + 500 * len(self._postings) + 72 * len(self._row_terms)

    def set(self, row: int, text: str) -> None:
        """Index ``text`` as row ``row``, replacing what the row held."""
        counts = Counter(terms(text))
        with self._lock:
            while row >= len(self._row_terms):
                self._row_terms.append(None)
                self._lengths.append(0.0)
                self._gens.append(0)
            self._drop(row)
            self._gens[row] += 1
            gen = self._gens[row]
            for term, tf in counts.items():
                postings = self._postings.get(term)
                if postings is None:
                    postings = self._postings[term] = _Postings()
                postings.rows.append(row)
                postings.tf.append(float(tf))
                postings.gen.append(gen)
                self._df[term] += 1
            self._posted += len(counts)
            self._row_terms[row] = tuple(counts)
            length = float(sum(counts.values()))
            self._lengths[row] = length
            self._total_length += length
            self._live += 1

    def matched(self, row: int, query: list[str]) -> list[str]:
        """The query terms row ``row`` holds."""
        held = self._row_terms[row] if row < len(self._row_terms) else None
        return [t for t in query if held and t in held]

    def remove(self, row: int) -> None:
        with self._lock:
            if row < len(self._row_terms):
                self._drop(row)
                self._gens[row] += 1

    def _drop(self, row: int) -> None:
        old = self._row_terms[row]
        if old is None:
            return
        for term in old:
            self._df[term] -= 1
        self._row_terms[row] = None
        self._total_length -= self._lengths[row]
        self._live -= 1

    def scores(self, query: list[str], n: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, BM25 scores) of the rows below ``n`` holding any query term, each row once."""
        with self._lock:  # arrays are read through views, which must not outlive the lock (appends resize them)
            parts = self._score_parts(query, n)
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        rows = np.concatenate([r for r, _ in parts])
        if len(parts) == 1:
            return rows.astype(np.int64), parts[0][1]
        unique, inverse = np.unique(rows, return_inverse=True)
        summed = np.bincount(inverse, weights=np.concatenate([s for _, s in parts]), minlength=len(unique))
        return unique.astype(np.int64), summed.astype(np.float32)

    def _score_parts(self, query: list[str], n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        live = self._live
        if live == 0:
            return []
        avg_length = max(self._total_length / live, 1e-9)
        lengths = np.frombuffer(self._lengths, dtype=np.float32)
        gens = np.frombuffer(self._gens, dtype=np.int32)
        parts = []
        for term in query:
            postings = self._postings.get(term)
            df = self._df.get(term, 0)
            if postings is None or df <= 0:
                continue
            rows = np.frombuffer(postings.rows, dtype=np.int32)
            keep = np.frombuffer(postings.gen, dtype=np.int32) == gens[rows]
            keep &= rows < n
            rows = rows[keep]  # fancy indexing copies: nothing below keeps a view
            tf = np.frombuffer(postings.tf, dtype=np.float32)[keep]
            idf = math.log(1.0 + (live - df + 0.5) / (df + 0.5))
            norm = K1 * (1.0 - B + B * lengths[rows] / avg_length)
            parts.append((rows, (idf * tf * (K1 + 1.0) / (tf + norm)).astype(np.float32)))
        return parts
