"""AppTest for the Lab and Timeline pages (and the map's time controls) on a database filled by a small replay."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_lab import LOCOMO, FactPerUserTurnDouble, adds_every_fact

from dashboard import adapter, state
from timemory import TiMem
from timemory.lab import configuration, evaluate, load_dataset, record_experiment, replay

ROOT = Path(__file__).resolve().parents[1]
USER = "exp1-conv-1-a"


@pytest.fixture
def tm(sqlite_store, embedder, tmp_path):
    memory = TiMem(sqlite_store, embedder, FactPerUserTurnDouble(consolidate=adds_every_fact))
    folder = tmp_path / "datasets"
    folder.mkdir()
    path = folder / "tiny-locomo.json"
    path.write_text(json.dumps(LOCOMO))
    ds = load_dataset(path, "locomo")
    for name, k in (("exp1", 5), ("exp2", 1)):
        runner = memory.variant(similar_k=k)
        replay(runner, ds, user_prefix=f"{name}-")
        record_experiment(runner, ds, name=name, user_prefix=f"{name}-", status="done",
                          config=configuration(runner, granularity="exchange"),
                          metrics=evaluate(runner, ds, user_prefix=f"{name}-", ks=[1, 5]))
    adapter.override(memory=memory, data_dir=tmp_path)
    yield memory
    adapter.override()


def app(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.session_state[state.USER] = USER
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_timeline_slider_shows_the_memory_as_of_that_moment(tm: TiMem) -> None:
    at = app("pages/timeline.py")
    now = at.dataframe[0].value
    assert len(now) == len(tm.list_memories(user_id=USER))
    at.slider(key=state.TIMELINE_AT).set_value(datetime(2023, 5, 20, tzinfo=UTC)).run()
    assert not at.exception, at.exception
    then = at.dataframe[0].value
    assert 0 < len(then) < len(now) and not any("Berlin" in c for c in then["content"])
    assert at.get("plotly_chart")
    labels = [e.label for e in at.expander]
    assert labels and all("2023-05-08" in label for label in labels)  # only the runs up to that moment
    assert any("added" in m.value for m in at.markdown)  # each run's diff


def test_timeline_steps_from_change_to_change_and_keeps_its_moment_in_the_url(tm: TiMem) -> None:
    tm.add("The user keeps bees.", user_id=USER, type="activity", created_at=datetime(2023, 7, 1, tzinfo=UTC))
    changes = sorted({e.created_at for e in tm.events(user_id=USER)})
    assert len(changes) == 3  # two replayed sessions and the memory added above
    at = app("pages/timeline.py")
    slider = lambda: at.slider(key=state.TIMELINE_AT).value.replace(tzinfo=UTC)  # noqa: E731
    assert slider() == changes[-1]
    at.button(key="timeline_previous").click().run()
    assert not at.exception, at.exception
    assert slider() == changes[-2] and at.query_params["at"] == changes[-2].isoformat()
    at.button(key="timeline_previous").click().run()
    assert slider() == changes[-3]
    at.button(key="timeline_previous").click().run()
    assert slider() == changes[0]  # the first change: nothing before it
    at.button(key="timeline_next").click().run()
    assert slider() == changes[-2]
    shown = len(at.dataframe[0].value)
    assert shown == len(tm.state_at(changes[-2], user_id=USER)) < len(tm.list_memories(user_id=USER))

    linked = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)  # a reload of that link
    linked.session_state[state.USER] = USER
    linked.query_params["at"] = changes[-2].isoformat()
    linked.run()
    linked.switch_page("pages/timeline.py").run()
    assert not linked.exception, linked.exception
    assert linked.slider(key=state.TIMELINE_AT).value.replace(tzinfo=UTC) == changes[-2]


def chart(at, key: str):  # type: ignore[no-untyped-def]
    """The page's plotly chart with this key."""
    return next(c for c in at.get("plotly_chart") if c.key == key)


def test_lab_lists_and_compares_experiments(tm: TiMem) -> None:
    at = app("pages/lab.py")
    setup, recall, misses = (at.dataframe[i].value for i in range(3))
    assert list(setup["name"]) == list(recall["name"]) == list(misses["name"]) == ["exp1", "exp2"]
    assert {"LLM calls", "tokens", "minutes"} <= set(setup.columns)
    # the distractor count stands beside recall; misses are attributed at k = 5 by default, and the columns say so
    assert {"recall@1", "recall@5", "others (median)"} <= set(recall.columns)
    assert {"hit @5", "session hit @5", "retrieval miss @5", "extraction miss @5"} <= set(misses.columns)
    compare = at.dataframe[3].value
    assert "exp2 − exp1" in compare.columns and "recall@5" in compare.index
    assert [c.key for c in at.get("plotly_chart")] == ["lab_recall", "lab_scope_compare", "lab_attribution"]
    # facts only against facts + what was said: the bars are each experiment's recall of the two scopes
    bars = {trace["name"]: trace["y"] for trace in json.loads(chart(at, "lab_scope_compare").proto.spec)["data"]}
    for e in tm.list_experiments():
        assert bars[f"{e.name}: facts only"] == list(e.metrics["recall_by_scope"]["memories"].values())
        assert bars[f"{e.name}: facts + what was said"] == list(e.metrics["recall_by_scope"]["all"].values())
    assert {"facts only @5", "facts + said @5"} <= set(recall.columns)
    question = at.selectbox(key=state.LAB_QUESTION)
    assert question.options and any("✅" in t.value or "·" in t.value for t in at.text)
    # the question's hits in each experiment, as stored: rank, mark, score and text, line for line
    stored = [r for e in tm.list_experiments() for q in e.metrics["questions"] if q["id"] == question.value
              for r in q["retrieved"]]
    shown = [t.value for t in at.text if not t.value.startswith("──── k = ")]  # the rule where k ends
    assert stored and len(shown) == len(stored)
    for line, r in zip(shown, stored, strict=True):
        mark = "✅" if r["evidence_hit"] else "🟦" if r["session_hit"] else "·"
        assert line.endswith(f"{mark} {r['score']:+.2f}  {r['content']}")


def test_attribution_follows_the_k_chosen_and_one_experiment_can_be_inspected(tm: TiMem) -> None:
    at = app("pages/lab.py")
    exp1 = next(e for e in tm.list_experiments() if e.name == "exp1")
    questions = exp1.metrics["questions"]
    for k in (1, 5):
        at.select_slider(key="lab_attribution_k").set_value(k).run()
        assert not at.exception, at.exception
        row = at.dataframe[2].value.set_index("name").loc["exp1"]
        assert row[f"hit @{k}"] == sum(q["hit_at"][str(k)] for q in questions)  # counted by hand from the record
        assert f"k = {k}" in str(chart(at, "lab_attribution").proto.spec)
    at.multiselect(key="lab_compare").set_value(["exp2"]).run()
    assert not at.exception, at.exception
    assert "Pick" not in " ".join(c.value for c in at.caption)
    inspected = at.dataframe[3].value
    assert list(inspected.columns) == ["exp2"] and "recall@5" in inspected.index
    assert len(at.get("plotly_chart")) == 3


def test_lab_starts_a_replay_in_the_background_and_refuses_a_second(tm: TiMem) -> None:
    at = app("pages/lab.py")
    at.selectbox(key="lab_file").set_value("tiny-locomo.json")
    at.selectbox(key="lab_speaker").set_value("a")
    at.text_input(key="lab_name").set_value("fresh run")
    at.button(key="lab_start").click().run()
    assert not at.exception, at.exception
    job = adapter.replay_jobs().get("fresh-run")
    assert job is not None
    at.button(key="lab_start").click().run()  # again while it may still run: refused, or resumes once it ended
    deadline = time.monotonic() + 60
    while job.running:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert job.status == "done" and job.done == job.total > 0
    assert tm.list_memories(user_id="fresh-run-conv-1-a")
    at.run()
    assert "fresh-run" in list(at.dataframe[0].value["name"])
    exp = tm.get_experiment("fresh-run")
    assert exp is not None and exp.metrics["recall_at"] and exp.status == "done"


def test_map_colours_by_creation_time_and_shows_a_past_moment(tm: TiMem) -> None:
    at = app("pages/embedding_map.py")
    at.selectbox(key="map_color").set_value("created").run()
    assert not at.exception, at.exception
    at.toggle(key="map_as_of_on").set_value(True).run()
    at.slider(key="map_as_of").set_value(datetime(2023, 5, 20, tzinfo=UTC)).run()
    assert not at.exception, at.exception
    caption = " ".join(c.value for c in at.caption)
    total = len(tm.list_memories(user_id=USER))
    assert "existed at 2023-05-20" in caption and f"{total} memories existed" not in caption


def test_timeline_names_a_reflection_run_and_shows_what_it_changed(tm: TiMem, sqlite_store, embedder) -> None:
    from doubles import ReflectingLLMDouble

    def outdate_paris(shown: dict[str, int]) -> list[dict]:
        paris = [sid for text, sid in shown.items() if "Paris" in text]
        later = [sid for sid in shown.values() if paris and sid > paris[0]]
        return [{"memory_id": paris[0], "action": "OUTDATE", "by": later[-1], "content": None,
                 "reason": "a later memory replaces it"}] if later else []

    report = TiMem(sqlite_store, embedder, ReflectingLLMDouble(outdate_paris)).reflect(user_id=USER)
    assert report.outdated == 1
    at = app("pages/timeline.py")
    labels = [e.label for e in at.expander]
    assert any("reflection on" in label and "1 change" in label for label in labels), labels
    assert any("outdated" in m.value for m in at.markdown)
    assert any("A reflection run" in c.value for c in at.caption)
