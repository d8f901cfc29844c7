"""Experiments: a replay recorded under a name with the configuration it ran with, its counts and its scores; and
:func:`run_experiment`, the one way to run one (the CLI, and the Lab page's background replays)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from timemory import _prompts as prompts
from timemory._facade import TiMem
from timemory.core._engine import DEFAULT_SEARCH_SCOPE
from timemory.errors import InvalidInputError
from timemory.lab._datasets import Dataset
from timemory.lab._evaluate import evaluate
from timemory.lab._replay import Granularity, ReplayReport, replay, replay_counts, units_of, user_ids
from timemory.lab._results import EvaluationResult
from timemory.schemas import Experiment


def prompts_hash() -> str:
    return hashlib.sha256(Path(prompts.__file__).read_bytes()).hexdigest()[:16]


def configuration(tm: TiMem, *, granularity: str, base_url: str | None = None,
                  scope: str = DEFAULT_SEARCH_SCOPE) -> dict[str, Any]:
    """The effective configuration an experiment ran with (no secrets: the LLM server's host only); ``scope`` is
    what its questions are searched in when it is scored."""
    return {
        "llm_model": getattr(tm.llm, "model", None),
        "llm_host": urlparse(base_url).hostname if base_url else "local",
        "embedder": tm.embedder.name,
        "embedding_dim": tm.embedder.dim,
        "similar_k": tm.similar_k,
        "similarity_threshold": tm.similarity_threshold,
        "search_mode": tm.engine.candidates.mode,
        "search_scope": scope,
        "candidates": dataclasses.asdict(tm.engine.candidates),
        "granularity": granularity,
        "prompts_sha256": prompts_hash(),
    }


def record_experiment(tm: TiMem, dataset: Dataset, *, name: str, user_prefix: str, config: dict[str, Any],
                      status: str, wall_seconds: float = 0.0, metrics: EvaluationResult | None = None) -> Experiment:
    """Create or update the experiment ``name``: one name is one dataset under one user prefix. ``metrics`` are
    stored as their JSON (:meth:`EvaluationResult.to_json`); without them the previous ones are kept."""
    previous = tm.get_experiment(name)
    if previous is not None and (previous.user_prefix != user_prefix or previous.dataset_sha256 != dataset.sha256):
        raise InvalidInputError(
            f"Experiment '{name}' replayed {previous.dataset_path} with user prefix '{previous.user_prefix}'; "
            "use another experiment name for another dataset or prefix.")
    experiment = Experiment(
        id=previous.id if previous else str(uuid.uuid4()), name=name, dataset_path=str(dataset.path),
        dataset_sha256=dataset.sha256, dataset_format=dataset.format, user_prefix=user_prefix, status=status,
        config=config or (previous.config if previous else {}), counts=replay_counts(tm, dataset, user_prefix),
        metrics=metrics.to_json() if metrics is not None else (previous.metrics if previous else {}),
        wall_seconds=(previous.wall_seconds if previous else 0.0) + wall_seconds,
    )
    tm.save_experiment(experiment)
    return tm.get_experiment(name) or experiment


def evaluation(experiment: Experiment) -> EvaluationResult | None:
    """The experiment's scores read from its stored metrics, however old the version that stored them (None when
    it was never scored)."""
    return EvaluationResult.from_stored(experiment.metrics)


def run_experiment(
    tm: TiMem,
    dataset: Dataset,
    *,
    name: str,
    user_prefix: str,
    config: dict[str, Any],
    granularity: Granularity = "exchange",
    limit: int | None = None,
    retry_failed: bool = False,
    evaluate_after: bool = False,
    reflect: bool = False,
    on_progress: Callable[[ReplayReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[ReplayReport, Experiment]:
    """Replay ``dataset`` as experiment ``name`` (resuming where it stopped) and record how it went; with
    ``reflect``, a finished replay is followed by a reflection pass over each of its users (resumable too); with
    ``evaluate_after``, a finished replay of a dataset with questions is scored and the scores recorded too. With
    ``config["summaries"]`` the replay keeps each session's rolling summary (:func:`timemory.lab._replay.replay`)."""
    if reflect:
        config = {**config, "reflect": True}
    record_experiment(tm, dataset, name=name, user_prefix=user_prefix, config=config, status="running")
    report = replay(tm, dataset, user_prefix=user_prefix, granularity=granularity, limit=limit,
                    retry_failed=retry_failed, on_progress=on_progress, should_stop=should_stop,
                    summaries=bool(config.get("summaries")))
    if reflect and not report.stopped:
        for user in user_ids(dataset, user_prefix):
            reflection = tm.engine.reflect(user_id=user, keep_going=lambda: not (should_stop and should_stop()))
            report.stopped = report.stopped or reflection.stopped
    metrics = None
    if evaluate_after and not report.stopped and any(c.questions for c in dataset.conversations):
        metrics = evaluate(tm, dataset, user_prefix=user_prefix,
                           scope=config.get("search_scope", DEFAULT_SEARCH_SCOPE))
    status = "stopped" if report.stopped else ("done" if not report.failed else "done_with_failures")
    experiment = record_experiment(tm, dataset, name=name, user_prefix=user_prefix, config=config, status=status,
                                   wall_seconds=report.wall_seconds, metrics=metrics)
    return report, experiment


# --- replays in the background (the dashboard's Lab page) -------------------------------------------------------------

@dataclass
class ReplayJob:
    """A replay running in a worker thread of this process; its progress can be read from any thread."""

    experiment: str
    dataset: Dataset
    user_prefix: str
    granularity: Granularity
    limit: int | None = None
    retry_failed: bool = False
    reflect: bool = False
    status: str = "starting"  # running, stopping, stopped, done, failed
    done: int = 0
    total: int = 0
    failures: int = 0
    processed: int = 0
    error: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None
    metrics: EvaluationResult | None = None  # its scores, once it ended scored
    runner: TiMem | None = None  # the engine it runs with (its own k and threshold); a resume uses it again
    config: dict[str, Any] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def running(self) -> bool:
        return self.status in ("starting", "running", "stopping")

    @property
    def unit(self) -> str:
        return "sessions" if self.granularity == "session" else "exchanges"

    @property
    def rate_per_min(self) -> float | None:
        """Units run per minute since this start, or None until the first is done (a resumed replay first waits
        for the model: a rate of 0 then would be a wrong figure, not a slow one)."""
        elapsed = (self.finished_at or time.monotonic()) - self.started_at
        return self.processed / elapsed * 60 if elapsed > 0 and self.processed else None

    @property
    def eta_seconds(self) -> float | None:
        rate = (self.rate_per_min or 0) / 60
        return (self.total - self.done) / rate if rate > 0 and self.running else None

    def stop(self) -> None:
        if self.running:
            self.status = "stopping"
            self._stop.set()


class ReplayJobs:
    """The replays of one server process: at most one per experiment at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, ReplayJob] = {}

    def get(self, experiment: str) -> ReplayJob | None:
        with self._lock:
            return self._jobs.get(experiment)

    def all(self) -> list[ReplayJob]:
        with self._lock:
            return list(self._jobs.values())

    def start(self, tm: TiMem, dataset: Dataset, *, experiment: str, user_prefix: str,
              granularity: Granularity = "exchange", limit: int | None = None, retry_failed: bool = False,
              reflect: bool = False, config: dict[str, Any] | None = None) -> ReplayJob:
        """Start (or resume) the replay of ``experiment`` in a worker thread; refused while it is running."""
        if not experiment.strip():
            raise InvalidInputError("Name the experiment.")
        job = ReplayJob(experiment=experiment, dataset=dataset, user_prefix=user_prefix, granularity=granularity,
                        limit=limit, retry_failed=retry_failed, reflect=reflect,
                        total=len(units_of(dataset, user_prefix, granularity, limit)))
        config = config or configuration(tm, granularity=granularity)
        job.runner, job.config = tm, config
        with self._lock:
            current = self._jobs.get(experiment)
            if current is not None and current.running:
                raise InvalidInputError(f"Experiment '{experiment}' is already replaying ({current.done} of "
                                      f"{current.total}); stop it first or wait for it to end.")
            # checked before the thread starts: a clash of dataset or prefix is reported to the caller
            record_experiment(tm, dataset, name=experiment, user_prefix=user_prefix, config=config, status="running")
            self._jobs[experiment] = job
        threading.Thread(target=self._run, args=(tm, job, config), daemon=True,
                         name=f"replay-{experiment[:20]}").start()
        return job

    @staticmethod
    def _run(tm: TiMem, job: ReplayJob, config: dict[str, Any]) -> None:
        def progress(report: ReplayReport) -> None:
            job.done, job.processed, job.failures = report.skipped + report.processed, report.processed, len(
                report.failed)
            if job.status == "starting":
                job.status = "running"

        try:
            job.status = "running"
            report, experiment = run_experiment(
                tm, job.dataset, name=job.experiment, user_prefix=job.user_prefix, config=config,
                granularity=job.granularity, limit=job.limit, retry_failed=job.retry_failed,
                evaluate_after=True, reflect=job.reflect, on_progress=progress, should_stop=job._stop.is_set)
            job.metrics = None if report.stopped else evaluation(experiment)
            job.status = "stopped" if report.stopped else "done"
        except Exception as exc:  # reported on the page; the replay can be resumed
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(Exception):  # the database itself may be what failed
                record_experiment(tm, job.dataset, name=job.experiment, user_prefix=job.user_prefix, config=config,
                                  status="failed")
        finally:
            job.finished_at = time.monotonic()
