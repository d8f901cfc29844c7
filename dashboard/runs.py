"""Where the chat shows a pipeline run, without Streamlit: once, under the last reply it learnt from (a replayed
session's one run covers all its replies and would otherwise repeat under each)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from timemory import Message, PipelineResult


def shown_under(messages: Sequence[Message], runs: Mapping[str, PipelineResult]) -> dict[str, PipelineResult]:
    """The run to show under each reply, by the reply's message id: every run once, under the last of its replies."""
    last: dict[str, str] = {}
    for m in messages:
        run = runs.get(m.id)
        if m.role == "assistant" and run is not None:
            last[run.run_id] = m.id
    return {mid: runs[mid] for mid in last.values()}
