"""Timeline: the user's memory as of any moment, how it grew, and what each pipeline run changed."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import adapter, router, state, views

router.ensure_router()
user = adapter.current_user()
tm = adapter.memory()

st.header("🕰️ Timeline")
ver = adapter.version(user)
log = adapter.event_log(user, ver)
if not log.events:
    st.info("This user has no memory history yet. Chat a little, replay a dataset in the Lab, or run `make seed`.")
    st.stop()

first, last = log.events[0].created_at, log.events[-1].created_at
if last - first < timedelta(minutes=1):
    last = first + timedelta(minutes=1)
step = max(timedelta(minutes=1), (last - first) / 400)
moment = st.slider("Memory as of", min_value=first, max_value=last, value=last, step=step, format="YYYY-MM-DD HH:mm",
                   key=state.TIMELINE_AT)
moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
then = adapter.state_at(user, moment, ver)
active = sum(m.status == "active" for m in then)
st.caption(f"As of {moment:%Y-%m-%d %H:%M} UTC: {adapter.plural(active, 'active memory', 'active memories')}, "
           f"{len(then) - active} outdated.")
views.memory_table(then)

counts = pd.DataFrame(adapter.counts_over_time(user, ver))
if not counts.empty:
    fig = go.Figure()
    for (type_, status), group in counts.groupby(["type", "status"]):
        fig.add_trace(go.Scatter(x=group["at"], y=group["memories"], mode="lines", name=f"{type_} ({status})",
                                 line={"dash": "dot" if status == "outdated" else "solid"}))
    fig.add_vline(x=moment.timestamp() * 1000, line={"color": "black", "width": 1})
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10}, yaxis_title="memories",
                      legend={"orientation": "h"})
    st.plotly_chart(fig, key="timeline_chart")

st.subheader("Pipeline runs")
total = adapter.run_count(user, moment, ver)
st.caption(f"{adapter.plural(total, 'run')} up to this moment, oldest first; "
           "open one for what it changed and its trace.")
PAGE = 25
pages = max(1, -(-total // PAGE))
page = int(st.number_input(f"Page (of {pages})", 1, pages, pages, key="timeline_page")) if pages > 1 else 1
page = min(page, pages)
for run in adapter.runs(user, moment, (page - 1) * PAGE, PAGE, ver):
    when = run.created_at or datetime.now(UTC)
    what = (f"reflection on {adapter.plural(len(run.candidates), 'memory', 'memories')}" if run.kind == "reflection"
            else adapter.plural(len(run.facts), "fact"))
    label = f"{when:%Y-%m-%d %H:%M} · {run.status} · {adapter.plural(len(run.changes), 'change')} · {what}"
    with st.expander(label):
        views.show_diff(adapter.run_diff(run, ver), run.run_id)
        with st.popover("Trace"):
            views.show_trace(run, f"tl-{run.run_id}")
