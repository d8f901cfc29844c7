"""Drawing helpers shared by pages: a pipeline run's record, a run's diff, a table of memories."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from dashboard import ui
from timemory import Decision, Memory, PipelineResult, RunDiff, SearchHit
from timemory.lab import SCRIPTED_MODEL

WHY_SHOWN = {"nearest": "close in meaning", "subject": "same subject", "type": "nearest of its type",
             "change": "worded as a change", "group": "reviewed together"}


def show_run(run: PipelineResult, key: str) -> None:
    """A pipeline run's record: what it was given, what the model decided and what changed."""
    if run.kind == "reflection":
        _reflection_run(run)
    else:
        _exchange_run(run)
    if run.changes:
        st.markdown("**What changed**")
        for c in run.changes:
            a, b = st.columns([5, 1])
            a.markdown(f"`{c.event}` {c.content or c.old_content or ''}")
            if b.button("Open", key=f"open-{key}-{c.memory_id}-{c.event}"):
                ui.open_memory(c.memory_id)
    st.caption("Time per stage: " + ", ".join(f"{k} {v:.3f}s" for k, v in run.timings.items()))


def _header(run: PipelineResult, first: str, count: int) -> None:
    cols = st.columns(5)
    cols[0].metric(first, count)
    cols[1].metric("Changes", len(run.changes))
    cols[2].metric("LLM calls", run.llm_calls)
    cols[3].metric("Tokens", run.prompt_tokens + run.completion_tokens)
    cols[4].metric("Seconds", f"{sum(run.timings.values()):.2f}")
    if run.llm_model == SCRIPTED_MODEL:
        st.caption("🎭 The model's answers in this run were scripted: written by hand for the demo; the pipeline that "
                   "applied them is the real one.")
    elif run.llm_model:
        st.caption(f"Model: {run.llm_model}")
    for err in run.errors:
        st.warning(err)


def _decisions(run: PipelineResult, about: str, name: Callable[[Decision], str]) -> None:
    if run.decisions:
        st.markdown("**Decisions**")
        st.dataframe(pd.DataFrame([{about: name(d), "action": d.action, "accepted": d.accepted, "reason": d.reason,
                                    "rejected because": d.rejected_because or ""} for d in run.decisions]),
                     hide_index=True, width="stretch")


def _exchange_run(run: PipelineResult) -> None:
    _header(run, "Facts", len(run.facts))

    def fact(i: int) -> str:
        return run.facts[i].content if 0 <= i < len(run.facts) else f"(fact {i})"

    if run.facts:
        st.markdown("**Facts extracted**")
        st.dataframe(pd.DataFrame([f.model_dump() for f in run.facts]), hide_index=True, width="stretch")
    if run.candidates:
        st.markdown("**Memories shown to the model**")
        st.dataframe(pd.DataFrame([{"new fact": fact(c.fact), "existing memory": c.content, "status": c.status,
                                    "similarity": round(c.score, 3), "shown because": WHY_SHOWN.get(c.via, c.via)}
                                   for c in run.candidates]), hide_index=True, width="stretch")
    _decisions(run, "fact", lambda d: fact(d.fact))


def _reflection_run(run: PipelineResult) -> None:
    st.caption("A reflection run: stored memories reviewed together for ones a later memory replaced or that "
               "say the same thing twice.")
    _header(run, "Memories reviewed", len(run.candidates))
    shown = {c.memory_id: c.content for c in run.candidates}
    if run.candidates:
        st.markdown("**Memories reviewed together**")
        st.dataframe(pd.DataFrame([{"existing memory": c.content, "status": c.status, "similarity": round(c.score, 3),
                                    "shown because": WHY_SHOWN.get(c.via, c.via)} for c in run.candidates]),
                     hide_index=True, width="stretch")
    _decisions(run, "memory", lambda d: shown.get(d.memory_id or "", d.memory_id or ""))


def show_diff(diff: RunDiff, key: str) -> None:
    """What a run changed: added, updated (before → after), outdated (with what replaced it), and the rest."""
    if not diff.changes:
        st.caption("This run changed no memory.")
    after = {c.memory_id: c.after for c in diff.changes}
    for c in diff.changes:
        before, now = c.before, c.after
        if c.kind == "added" and now is not None:
            st.markdown(f"➕ **added** `{now.type}`")
            st.text(now.content)
        elif c.kind in ("updated", "edited") and before is not None and now is not None:
            st.markdown(f"✏️ **{c.kind}** `{now.type}`")
            st.text(f"{before.content}\n→ {now.content}")
        elif c.kind == "outdated" and now is not None:
            replaced = after.get(now.superseded_by or "")
            st.markdown("🕰️ **outdated**" + (" — replaced by the memory below" if replaced else ""))
            st.text(now.content + (f"\n⇒ {replaced.content}" if replaced else ""))
        else:
            st.markdown(f"**{c.kind}**")
            st.text((now or before).content if (now or before) else c.memory_id)  # type: ignore[union-attr]


def memory_table(memories: list[Memory]) -> None:
    """Memories in the memory browser's columns (read-only)."""
    texts = {m.id: m.content for m in memories}
    st.dataframe(pd.DataFrame([{
        "content": m.content, "type": m.type, "status": m.status, "created": m.created_at.strftime("%Y-%m-%d %H:%M"),
        "updated": m.updated_at.strftime("%Y-%m-%d %H:%M"),
        "superseded by": texts.get(m.superseded_by or "", "(later)" if m.superseded_by else ""), "id": m.id,
    } for m in memories], columns=["content", "type", "status", "created", "updated", "superseded by", "id"]),
        hide_index=True, width="stretch")


def search_table(hits: list[SearchHit]) -> pd.DataFrame:
    """Search hits as rows: a memory with its type, status and the messages it was learnt from; a message (what was
    said) with who said it, when, and what was learnt from it; each with its score parts."""
    rows = []
    mixed = any(h.episode is not None for h in hits)
    for h in hits:
        memory, said = h.memory, h.episode
        rows.append({
            "score": round(h.score, 3),
            "status": memory.status if memory is not None else None,
            "type": memory.type if memory is not None else None,
            "content": h.text, "kind": ("memory" if memory is not None else "said") if mixed else None,
            "said": f"{said.speaker}, {said.created_at:%Y-%m-%d %H:%M}" if said is not None else None,
            "learnt": " · ".join(m.content for m in said.learnt) if said is not None else None,
            "learnt from": " · ".join(f"{e.speaker}: {e.content}" for e in h.sources) or None,
            "meaning": None if h.scores is None or h.scores.vector is None else round(h.scores.vector, 3),
            "words ÷ best": None if h.scores is None or h.scores.keyword_norm is None else round(h.scores.keyword_norm,
                                                                                               2),
            "words (BM25)": None if h.scores is None or h.scores.keyword is None else round(h.scores.keyword, 2),
            "matched": ", ".join(h.scores.matched_terms) if h.scores else "",
            "why": h.scores.explain() if h.scores else "", "id": h.id})
    return pd.DataFrame(rows)
