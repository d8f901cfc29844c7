"""The Lab's replays, without Streamlit: a request from the page's form → a dataset file → a background replay job.

The page builds a :class:`ReplayRequest` from its widgets, shows :meth:`ReplayRequest.problem` when there is one,
and starts the job through :func:`dashboard.adapter.start_replay` (which calls :func:`start_replay` here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from timemory import InvalidInputError, TiMem
from timemory.core import DEFAULT_SEARCH_SCOPE
from timemory.lab import Granularity, ReplayJob, ReplayJobs, configuration, demo_dataset, load_dataset

DEMO_EXPERIMENT = "demo-live"
DEMO_PREFIX = "live-"


@dataclass(frozen=True)
class Upload:
    """A file sent through the page's uploader: its name as the browser gave it, and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class ReplayRequest:
    """What the Lab's "New replay" form asks for."""

    name: str
    upload: Upload | None = None  # a new file, kept in the datasets folder
    picked: str | None = None  # or a file already in that folder
    format: str = "locomo"
    speaker: str = "both"
    granularity: str = "exchange"
    limit: int = 0  # only the first N units; 0 = all
    retry_failed: bool = False
    summaries: bool = False
    reflect: bool = False
    scope: str = DEFAULT_SEARCH_SCOPE
    similar_k: int | None = None  # overrides for this run; None keeps the configured one
    similarity_threshold: float | None = None

    @property
    def experiment(self) -> str:
        return experiment_slug(self.name)

    @property
    def per(self) -> Granularity:
        return "session" if self.granularity == "session" else "exchange"

    def problem(self) -> str | None:
        """Why the replay cannot start, in the words the page shows; None when it can."""
        if not self.experiment:
            return "Name the experiment (letters, digits, dots, dashes)."
        if self.upload is None and self.picked is None:
            return "Upload a dataset file or pick one."
        return None


def experiment_slug(name: str) -> str:
    """The experiment's name as it is stored and prefixes its users: runs of other characters become one dash,
    at most 60 characters, no dash at either end."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name.strip())[:60].strip("-")


def known_datasets(folder: Path) -> list[str]:
    """The dataset files already in ``folder``, by name."""
    return sorted(p.name for p in folder.glob("*.json")) if folder.exists() else []


def dataset_file(folder: Path, request: ReplayRequest) -> Path:
    """The file to replay: an upload is saved in ``folder`` under its base name (never outside it), replacing a
    file of that name; otherwise the picked file there."""
    if request.upload is not None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / Path(request.upload.name).name
        path.write_bytes(request.upload.data)
        return path
    return folder / Path(str(request.picked)).name


def start_replay(tm: TiMem, jobs: ReplayJobs, folder: Path, request: ReplayRequest, *,
                 base_url: str | None = None) -> ReplayJob:
    """Load the dataset and start its replay in the background, with the request's k and threshold, into users
    named ``<experiment>-<conversation>``. Raises :class:`InvalidInputError` for a request with a problem, a
    dataset that does not read, or an experiment that is already replaying."""
    if (problem := request.problem()) is not None:
        raise InvalidInputError(problem)
    dataset = load_dataset(dataset_file(folder, request), request.format, speaker=request.speaker)
    runner = tm.variant(similar_k=request.similar_k, similarity_threshold=request.similarity_threshold)
    config = {**configuration(runner, granularity=request.per, base_url=base_url, scope=request.scope),
              "summaries": request.summaries}
    slug = request.experiment
    return jobs.start(runner, dataset, experiment=slug, user_prefix=f"{slug}-", granularity=request.per,
                      limit=int(request.limit) or None, retry_failed=request.retry_failed, reflect=request.reflect,
                      config=config)


def resume(tm: TiMem, jobs: ReplayJobs, job: ReplayJob) -> ReplayJob:
    """Start a stopped or failed replay again where it ended, with what it ran with (``tm`` when it kept none)."""
    return jobs.start(job.runner or tm, job.dataset, experiment=job.experiment, user_prefix=job.user_prefix,
                      granularity=job.granularity, limit=job.limit, retry_failed=job.retry_failed,
                      reflect=job.reflect, config=job.config or None)


def start_demo(tm: TiMem, jobs: ReplayJobs) -> ReplayJob:
    """Replay the demo's conversations with ``tm``'s model, a session at a time, into users ``live-<user>``."""
    return jobs.start(tm, demo_dataset(), experiment=DEMO_EXPERIMENT, user_prefix=DEMO_PREFIX,
                      granularity="session", config=configuration(tm, granularity="session"))
