"""The Lab's "New replay" form, without Streamlit: a name becomes the experiment's slug, an uploaded file is kept in
the datasets folder (under its base name only), and the replay starts in the background with the overrides asked
for, into users named after the experiment; a stopped or finished replay resumes with what it ran with."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from doubles import HashEmbedderDouble
from test_lab import LOCOMO, FactPerUserTurnDouble, adds_every_fact

from dashboard import lab_jobs
from dashboard.lab_jobs import ReplayRequest, Upload
from timemory import InvalidInputError, TiMem
from timemory.lab import ReplayJob, ReplayJobs
from timemory.store import Store

DATA = json.dumps(LOCOMO).encode()


@pytest.fixture
def tm(tmp_path: Path) -> Iterator[TiMem]:
    embedder = HashEmbedderDouble()
    store = Store.from_url(f"sqlite:///{tmp_path}/t.db", embedding_model=embedder.name, embedding_dim=embedder.dim)
    yield TiMem(store, embedder, FactPerUserTurnDouble(consolidate=adds_every_fact), similar_k=5)
    store.close()


def finished(job: ReplayJob) -> ReplayJob:
    deadline = time.monotonic() + 60
    while job.running:
        assert time.monotonic() < deadline, job.status
        time.sleep(0.05)
    return job


@pytest.mark.parametrize(("name", "slug"), [
    ("fresh run", "fresh-run"),
    ("  k=3, threshold 0.4  ", "k-3-threshold-0.4"),  # "=", ", " and " " each become one dash
    ("Ümlaut / v2", "mlaut-v2"),  # a leading run of others becomes a dash, then trimmed
    ("exp_1.b", "exp_1.b"),
    ("!!!", ""),
    ("a" * 70, "a" * 60),
    ("x" * 59 + " y", "x" * 59),  # cut at 60 ("x"*59 + "-"), then the trailing dash trimmed
])
def test_an_experiment_name_becomes_a_slug(name: str, slug: str) -> None:
    assert lab_jobs.experiment_slug(name) == slug
    assert ReplayRequest(name=name).experiment == slug


def test_a_request_without_a_usable_name_or_a_file_says_what_is_missing() -> None:
    assert ReplayRequest(name="!!", picked="x.json").problem() == "Name the experiment (letters, digits, dots, dashes)."
    assert ReplayRequest(name="run").problem() == "Upload a dataset file or pick one."
    assert ReplayRequest(name="run", picked="x.json").problem() is None
    assert ReplayRequest(name="run", upload=Upload("x.json", b"[]")).problem() is None


def test_an_upload_is_kept_in_the_folder_under_its_base_name_only(tmp_path: Path) -> None:
    folder = tmp_path / "datasets"
    path = lab_jobs.dataset_file(folder, ReplayRequest(name="r", upload=Upload("../../evil.json", b"[1]")))
    assert path == folder / "evil.json" and path.read_bytes() == b"[1]"
    assert not (tmp_path.parent / "evil.json").exists()
    assert lab_jobs.dataset_file(folder, ReplayRequest(name="r", picked="../other.json")) == folder / "other.json"
    assert lab_jobs.known_datasets(folder) == ["evil.json"] and lab_jobs.known_datasets(tmp_path / "none") == []


def test_an_uploaded_file_starts_its_replay_in_the_background_with_the_overrides(tm: TiMem, tmp_path: Path) -> None:
    jobs, folder = ReplayJobs(), tmp_path / "datasets"
    request = ReplayRequest(name="fresh run", upload=Upload("tiny.json", DATA), format="locomo", speaker="a",
                            granularity="session", limit=2, summaries=True, scope="all", similar_k=3,
                            similarity_threshold=0.5)
    job = lab_jobs.start_replay(tm, jobs, folder, request, base_url="http://models.example:8080/v1")
    assert jobs.get("fresh-run") is job and (folder / "tiny.json").read_bytes() == DATA
    # speaker a of the one conversation: its 3 sessions, the first 2 of them asked for
    assert (job.user_prefix, job.granularity, job.limit, job.total) == ("fresh-run-", "session", 2, 2)
    assert job.runner is not None and job.runner.similar_k == 3 and job.runner.similarity_threshold == 0.5
    assert tm.similar_k == 5  # the overrides are the run's own
    assert job.config["summaries"] is True and job.config["granularity"] == "session"
    assert job.config["search_scope"] == "all" and job.config["llm_host"] == "models.example"
    assert tm.get_experiment("fresh-run") is not None  # recorded at once, as running
    assert finished(job).status == "done" and job.done == 2
    assert {u.id for u in tm.users.list()} == {"fresh-run-conv-1-a"}
    assert tm.get_experiment("fresh-run").metrics["recall_at"]  # type: ignore[union-attr]


def test_a_picked_file_with_no_limit_replays_every_exchange(tm: TiMem, tmp_path: Path) -> None:
    folder = tmp_path / "datasets"
    folder.mkdir()
    (folder / "tiny.json").write_bytes(DATA)
    job = lab_jobs.start_replay(tm, ReplayJobs(), folder, ReplayRequest(name="all", picked="tiny.json", speaker="a"))
    assert job.limit is None and job.granularity == "exchange" and job.runner.similar_k == 5  # type: ignore[union-attr]
    assert job.config["summaries"] is False and job.config["llm_host"] == "local"
    assert finished(job).status == "done" and job.done == job.total > 2


def test_a_request_with_a_problem_or_a_bad_file_starts_nothing(tm: TiMem, tmp_path: Path) -> None:
    jobs, folder = ReplayJobs(), tmp_path / "datasets"
    with pytest.raises(InvalidInputError, match="Name the experiment"):
        lab_jobs.start_replay(tm, jobs, folder, ReplayRequest(name="", upload=Upload("a.json", DATA)))
    assert not folder.exists()  # nothing was written
    with pytest.raises(InvalidInputError):
        lab_jobs.start_replay(tm, jobs, folder, ReplayRequest(name="bad", upload=Upload("bad.json", b"{not json")))
    assert jobs.all() == [] and tm.list_experiments() == []


def test_a_replay_resumes_with_the_runner_and_configuration_it_ran_with(tm: TiMem, tmp_path: Path) -> None:
    jobs = ReplayJobs()
    first = finished(lab_jobs.start_replay(tm, jobs, tmp_path, ReplayRequest(
        name="r", upload=Upload("tiny.json", DATA), speaker="a", limit=1, similar_k=2)))
    again = finished(lab_jobs.resume(tm, jobs, first))
    assert again is not first and jobs.get("r") is again
    assert again.runner is first.runner and again.config == first.config
    assert (again.user_prefix, again.granularity, again.limit) == ("r-", "exchange", 1)
    assert again.status == "done" and again.done == 1 and again.processed == 0  # already replayed: skipped


def test_the_demo_replays_a_session_at_a_time_into_the_live_users(tm: TiMem) -> None:
    job = finished(lab_jobs.start_demo(tm, ReplayJobs()))
    assert (job.experiment, job.user_prefix, job.granularity) == ("demo-live", "live-", "session")
    assert job.status == "done" and job.config["granularity"] == "session"
    assert {u.id for u in tm.users.list()} == {"live-maya", "live-tomas", "live-aisha"}
