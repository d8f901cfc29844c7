"""Timeline: the user's memory as of any moment, how it grew, and what each pipeline run changed."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import adapter, moments, router, state, ui, views
from dashboard.moments import aware

router.ensure_router()
user = ui.current_user()

st.header("🕰️ Timeline")
ver = adapter.version(user)
log = adapter.event_log(user, ver)
if not log.events:
    st.info("This user has no memory history yet. Chat a little, replay a dataset in the Lab, or run `make seed`.")
    st.stop()

changes = sorted({e.created_at for e in log.events})  # the moments something changed, to step between
first, last = moments.span(changes)
if state.TIMELINE_AT not in st.session_state:  # first visit in this browser session: a link may name the moment
    st.session_state[state.TIMELINE_AT] = moments.linked(ui.from_url(state.Q_AT), first, last)
elif not first <= aware(st.session_state[state.TIMELINE_AT]) <= last:  # another user's moment
    st.session_state[state.TIMELINE_AT] = last


def step_to(direction: int) -> None:
    """Move the slider to the previous (-1) or next (+1) moment something changed."""
    st.session_state[state.TIMELINE_AT] = moments.step(changes, st.session_state[state.TIMELINE_AT], direction,
                                                       first, last)


left, middle, right = st.columns([1.3, 8, 1.3], vertical_alignment="bottom")
left.button("◀ Previous", key="timeline_previous", on_click=step_to, args=(-1,), width="stretch",
            help="The moment before this one when the memory changed")
step = max(timedelta(minutes=1), (last - first) / 400)
moment = aware(middle.slider("Memory as of", min_value=first, max_value=last, step=step, format="YYYY-MM-DD HH:mm",
                             key=state.TIMELINE_AT))
right.button("Next ▶", key="timeline_next", on_click=step_to, args=(1,), width="stretch",
             help="The next moment the memory changed")
ui.set_url(**{state.Q_AT: None if moment >= last else moment.isoformat()})  # the moment, for reloads and links
then = adapter.state_at(user, moment, ver)
active = sum(m.status == "active" for m in then)
st.caption(f"As of {moment:%Y-%m-%d %H:%M} UTC: {ui.plural(active, 'active memory', 'active memories')}, "
           f"{len(then) - active} outdated.")
views.memory_table(then)

counts = pd.DataFrame(adapter.counts_over_time(user, ver))
if not counts.empty:
    # every series known at every moment (a count holds until it changes), then active by type and outdated in all
    wide = counts.pivot_table(index="at", columns=["status", "type"], values="memories", aggfunc="last")
    wide = wide.sort_index().ffill().fillna(0)
    fig = go.Figure()
    for type_ in sorted(wide["active"].columns) if "active" in wide else []:
        fig.add_trace(go.Scatter(x=wide.index, y=wide["active"][type_], mode="lines", name=type_, stackgroup="active",
                                 line={"shape": "hv", "width": 0.5}))
    if "outdated" in wide:
        fig.add_trace(go.Scatter(x=wide.index, y=wide["outdated"].sum(axis=1), mode="lines", name="outdated (all)",
                                 line={"shape": "hv", "color": "#c62828", "width": 3, "dash": "dash"}))
    fig.add_vline(x=moment.timestamp() * 1000, line={"color": "black", "width": 1})
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10}, legend={"orientation": "h"},
                      yaxis={"title": "memories", "rangemode": "tozero", "tickformat": "d",
                             **({"dtick": 1} if wide.to_numpy().sum(axis=1).max() <= 10 else {})})
    st.plotly_chart(fig, key="timeline_chart")
    st.caption("Active memories stacked by type; the dashed red line counts the outdated ones.")

st.subheader("Pipeline runs")
total = adapter.run_count(user, moment, ver)
st.caption(f"{ui.plural(total, 'run')} up to this moment, oldest first; "
           "open one for what it changed and its trace.")
PAGE = 25
pages = max(1, -(-total // PAGE))
page = int(st.number_input(f"Page (of {pages})", 1, pages, pages, key="timeline_page")) if pages > 1 else 1
page = min(page, pages)
for run in adapter.runs(user, moment, (page - 1) * PAGE, PAGE, ver):
    when = run.created_at or datetime.now(UTC)
    what = (f"reflection on {ui.plural(len(run.candidates), 'memory', 'memories')}" if run.kind == "reflection"
            else ui.plural(len(run.facts), "fact"))
    label = f"{when:%Y-%m-%d %H:%M} · {run.status} · {ui.plural(len(run.changes), 'change')} · {what}"
    with st.expander(label):
        views.show_diff(adapter.run_diff(run, ver), run.run_id)
        with st.popover("Trace"):
            views.show_run(run, f"tl-{run.run_id}")
