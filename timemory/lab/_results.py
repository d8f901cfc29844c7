"""What :func:`timemory.lab.evaluate` returns: the evaluation of a replayed dataset as typed models.

Their JSON (``model_dump(mode="json")``, or :meth:`EvaluationResult.to_json`) is the shape the CLI writes, an
experiment stores as its metrics and the Lab reads: figures at k are keyed by k as a string (``recall_at["5"]``),
and a key that ``evaluate`` only writes in some cases (a question's ``update``, its graded answer, the result's
``stale`` and ``answer_accuracy``) is left out when it does not apply, not written as null. Reading an older
experiment's stored metrics (:meth:`EvaluationResult.from_stored`) fills what that version did not record with
empty values (no ``evidence_learnt``: None, so nothing is attributed from it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from timemory.lab._metrics import bootstrap_ci

ATTRIBUTION_K = 5
Attribution = Literal["hit", "extraction_miss_recovered", "session_hit", "retrieval_miss", "extraction_miss"]
ATTRIBUTIONS: tuple[Attribution, ...] = ("hit", "extraction_miss_recovered", "session_hit", "retrieval_miss",
                                         "extraction_miss")

AtK = dict[str, float]  # a share of the questions at each k, keyed by k as a string
FoundAtK = dict[str, bool]  # for one question: at each k, keyed by k as a string


class _Record(BaseModel):
    """A part of the result; the fields :meth:`_left_out` names are left out of its JSON when they are None."""

    model_config = ConfigDict(coerce_numbers_to_str=True)  # older records and hand-made ones: category 1 is "1"
    _absent_when_none: ClassVar[frozenset[str]] = frozenset()

    def _left_out(self) -> frozenset[str]:
        return self._absent_when_none

    @model_serializer(mode="wrap")
    def _leave_out_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        absent = self._left_out()
        return {k: v for k, v in data.items() if not (v is None and k in absent)}

    def to_json(self) -> dict[str, Any]:
        """Its JSON: what the CLI writes and an experiment stores."""
        return self.model_dump(mode="json")


class Retrieved(_Record):
    """One of a question's top hits, best first."""

    kind: Literal["memory", "episode"] = "memory"
    memory_id: str  # the memory's id, or the message's for an episode
    user_id: str
    content: str
    score: float
    evidence_hit: bool  # learnt from an evidence message, or that message itself
    session_hit: bool = False  # linked to the evidence only through the whole session it was learnt in


class UpdateOutcome(_Record):
    """A question about something that changed: at each k, whether the top k holds the latest statement and whether
    it holds a stale memory; and whether a stale memory is still active at all."""

    latest_at: FoundAtK = Field(default_factory=dict)
    stale_at: FoundAtK = Field(default_factory=dict)
    stale_active: bool = False


class QuestionResult(_Record):
    """One scored question: what it asked, whether it was found at each k, and why not."""

    _absent_when_none: ClassVar[frozenset[str]] = frozenset(
        {"update", "old_evidence", "model_answer", "correct", "judge_reason"})

    id: str
    question: str = ""
    answer: str = ""
    category: str = "none"
    evidence: list[str] = Field(default_factory=list)
    hit_at: FoundAtK
    hit_at_by_scope: dict[str, FoundAtK] = Field(default_factory=dict)
    session_hit_at: FoundAtK = Field(default_factory=dict)
    evidence_learnt: bool | None = None  # None: not recorded (an older record), so misses cannot be attributed
    distractors: int = 0  # the memories searched that were not learnt from its evidence
    first_rank: int | None = None  # the rank of its first evidence hit in the top (largest) k; None: not found
    ndcg_at: AtK = Field(default_factory=dict)
    all_evidence_at: FoundAtK = Field(default_factory=dict)  # every evidence message covered by the top k
    session_found_at: FoundAtK = Field(default_factory=dict)  # a hit from a session that holds evidence
    retrieved: list[Retrieved] = Field(default_factory=list)
    update: UpdateOutcome | None = None  # only for a question about something that changed
    old_evidence: list[str] | None = None  # ditto: the replaced statement
    attribution: str | None = None  # at the result's attribution_k
    model_answer: str | None = None  # answered and graded: all three are written (the first two None if it failed)
    correct: bool | None = None
    judge_reason: str | None = None

    def _left_out(self) -> frozenset[str]:
        if self.judge_reason is not None:  # graded: a failed grading is written too, with no answer and no verdict
            return self._absent_when_none - {"model_answer", "correct"}
        return self._absent_when_none

    def scored_at(self, k: int) -> bool:
        """Whether it was scored at ``k`` with what was learnt from its evidence (so it can be attributed)."""
        return self.evidence_learnt is not None and str(k) in self.hit_at

    def attribute(self, k: int) -> Attribution:
        """Why it was missed at ``k`` (see :func:`timemory.lab.attribute`)."""
        if self.hit_at[str(k)]:
            return "hit" if self.evidence_learnt else "extraction_miss_recovered"
        if self.session_hit_at.get(str(k)):
            return "session_hit"
        return "retrieval_miss" if self.evidence_learnt else "extraction_miss"


class Distractors(_Record):
    """Over the questions: the fewest and the median of the memories searched not learnt from the evidence."""

    min: int | None = None
    median: int | None = None


class Scores(_Record):
    """Recall@k, session hits@k and misses by kind over a set of scored questions (all, or one category); and the
    ranking metrics of retrieval benchmarks: MRR (over the largest k, 0 for a question not found there), NDCG@k,
    all-evidence recall@k, session-level recall@k (a hit from a session holding evidence) and a 95% bootstrap
    interval of recall@k (questions resampled, fixed seed)."""

    scored_questions: int = 0
    recall_at: AtK = Field(default_factory=dict)
    recall_ci: dict[str, list[float]] = Field(default_factory=dict)
    mrr: float | None = None  # None: an older record
    ndcg_at: AtK = Field(default_factory=dict)
    all_evidence_recall_at: AtK = Field(default_factory=dict)
    session_recall_at: AtK = Field(default_factory=dict)
    session_hit_at: AtK = Field(default_factory=dict)  # found only through a session-wide link: never in recall
    attribution_k: int | None = None
    attribution: dict[str, int] = Field(default_factory=dict)  # questions by why they were missed at attribution_k
    distractors: Distractors = Field(default_factory=Distractors)

    @classmethod
    def of(cls, questions: Sequence[QuestionResult], ks: Sequence[int], attribution_k: int) -> Scores:
        n = len(questions)
        distractors = sorted(q.distractors for q in questions)

        def share(values: Sequence[float]) -> float:
            return round(sum(values) / n, 4) if n else 0.0

        return cls(
            scored_questions=n,
            recall_at={str(k): share([q.hit_at[str(k)] for q in questions]) for k in ks},
            recall_ci={str(k): bootstrap_ci([float(q.hit_at[str(k)]) for q in questions]) for k in ks},
            mrr=share([1 / q.first_rank if q.first_rank else 0.0 for q in questions]),
            ndcg_at={str(k): share([q.ndcg_at.get(str(k), 0.0) for q in questions]) for k in ks},
            all_evidence_recall_at={str(k): share([q.all_evidence_at.get(str(k), False) for q in questions])
                                    for k in ks},
            session_recall_at={str(k): share([q.session_found_at.get(str(k), False) for q in questions])
                               for k in ks},
            session_hit_at={str(k): round(sum(q.session_hit_at.get(str(k), False) for q in questions) / n, 4)
                            if n else 0.0 for k in ks},
            attribution_k=attribution_k,
            attribution={a: sum(q.attribute(attribution_k) == a for q in questions) for a in ATTRIBUTIONS},
            distractors=Distractors(min=distractors[0] if n else 0, median=distractors[n // 2] if n else 0),
        )


class StaleScores(_Record):
    """Over the questions about something that changed: the share whose top k holds the latest statement, the share
    whose top k returns a stale memory, and the share with a stale memory still active."""

    questions: int = 0
    latest_found_at: AtK = Field(default_factory=dict)
    stale_returned_at: AtK = Field(default_factory=dict)
    stale_active: float = 0.0


class MemoryCounts(_Record):
    total: int = 0
    active: int = 0
    per_100_turns: float = 0.0


class Cost(_Record):
    llm_calls_per_exchange: float = 0.0
    tokens_per_exchange: float = 0.0
    runs: int = 0


class AnswerAccuracy(_Record):
    """Answers from the retrieved memories graded by a judge model (only as meaningful as the models)."""

    accuracy: float | None = None  # None when nothing could be graded
    graded: int = 0
    failed: int = 0
    per_category: dict[str, float] = Field(default_factory=dict)
    answer_model: str | None = None
    judge_model: str | None = None
    note: str = ""


class EvaluationResult(Scores):
    """The evaluation of a replayed dataset: the scores over every question (the fields of :class:`Scores`), the
    search it was scored with, recall of every scope, per category, stale memories, the memories and the cost of the
    replay, every question, and the graded answers when asked for."""

    _absent_when_none: ClassVar[frozenset[str]] = frozenset({"stale", "answer_accuracy"})

    search_mode: str | None = None
    search_scope: str | None = None  # None: an older record, scored in the memories
    recall_by_scope: dict[str, AtK] = Field(default_factory=dict)
    per_category: dict[str, Scores] = Field(default_factory=dict)
    stale: StaleScores | None = None  # only when some question is about something that changed
    memories: MemoryCounts = Field(default_factory=MemoryCounts)
    cost: Cost = Field(default_factory=Cost)
    questions: list[QuestionResult] = Field(default_factory=list)
    answer_accuracy: AnswerAccuracy | None = None  # only when the questions were answered and graded

    @classmethod
    def from_stored(cls, metrics: Mapping[str, Any] | None) -> EvaluationResult | None:
        """An experiment's stored metrics read back, however old (None when it was never scored)."""
        return cls.model_validate(metrics) if metrics else None
