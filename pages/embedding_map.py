"""2-D map of a user's memory embeddings: PCA at once, UMAP when asked, supersession lines, query placement."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import adapter, router, state, ui
from timemory.lab import UMAP_MIN_POINTS

router.ensure_router()
user = ui.current_user()

st.header("🗺️ Embedding map")
c1, c2, c3 = st.columns([2, 2, 4])
color_by = c1.selectbox("Colour by", ["type", "status", "session", "created"], key="map_color")
method = c2.radio("Projection", ["PCA", "UMAP"], horizontal=True, key=state.MAP_METHOD)
query = c3.text_input("Place a query on the map", key="map_query")

ver = adapter.version(user)
mems, matrix, coords = adapter.map_data(user, ver, "pca")
if not mems:
    st.info("This user has no memories yet. Chat a little, or run `make seed`.")
    st.stop()
if method == "UMAP":
    if len(mems) < UMAP_MIN_POINTS:
        st.caption(f"UMAP needs at least {UMAP_MIN_POINTS} points; showing PCA.")
    else:
        with st.spinner("Computing UMAP (the first run in a process compiles code and takes a while)…"):
            mems, matrix, coords = adapter.map_data(user, ver, "umap")

sessions = {s.id: s.title for s in adapter.sessions(user)}
df = pd.DataFrame({
    "x": coords[:, 0], "y": coords[:, 1], "id": [m.id for m in mems], "content": [m.content for m in mems],
    "type": [m.type for m in mems], "status": [m.status for m in mems],
    "session": [sessions.get(m.source_session_id or "", "(none)") for m in mems],
    "created": [m.created_at for m in mems], "superseded_by": [m.superseded_by for m in mems],
})
index = {m.id: i for i, m in enumerate(mems)}

events = adapter.event_log(user, ver).events
first = min(df.created).to_pydatetime()
last = max([max(df.created).to_pydatetime(), *(e.created_at for e in events[-1:])])  # the latest change too
if st.toggle("Show the map as of a moment", key="map_as_of_on") and last > first:
    moment = st.slider("As of", min_value=first, max_value=last, value=last, format="YYYY-MM-DD HH:mm",
                       key="map_as_of")
    then = {m.id: m for m in adapter.state_at(user, moment, ver)}
    df = df[df.id.isin(then)].copy()  # not yet created: hidden; outdated as they were then
    df["status"] = [then[i].status for i in df.id]
    df["superseded_by"] = [then[i].superseded_by for i in df.id]
    st.caption(f"{ui.plural(len(df), 'memory', 'memories')} existed at {moment:%Y-%m-%d %H:%M}.")

fig = go.Figure()
at = {i: (x, y) for i, x, y in zip(df.id, df.x, df.y, strict=True)}
links = [(at[a], at[b]) for a, b in zip(df.id, df.superseded_by, strict=True) if b in at]
if links:  # one trace for every line from an outdated memory to what superseded it (None breaks the line)
    fig.add_trace(go.Scattergl(
        x=[v for a, b in links for v in (a[0], b[0], None)],
        y=[v for a, b in links for v in (a[1], b[1], None)],
        mode="lines", hoverinfo="skip", name="superseded by", showlegend=False,
        line={"color": "rgba(120,120,120,0.5)", "dash": "dot"},
    ))
symbols = {"active": "circle", "outdated": "x"}
if color_by == "created":  # one trace, coloured by creation time
    stamps = [t.timestamp() for t in df.created]
    fig.add_trace(go.Scattergl(
        x=df.x, y=df.y, mode="markers", name="memories", customdata=df[["id"]].values, text=df.content,
        hovertemplate="%{text}<extra></extra>", showlegend=False,
        marker={"size": 11, "symbol": [symbols[s] for s in df.status], "line": {"width": 1}, "color": stamps,
                "colorscale": "Viridis", "colorbar": {
                    "title": {"text": "created"}, "tickvals": [min(stamps), max(stamps)],
                    "ticktext": [f"{min(df.created):%Y-%m-%d}", f"{max(df.created):%Y-%m-%d}"]}},
    ))
else:
    palette = ["#4F46E5", "#059669", "#D97706", "#DC2626", "#0891B2", "#7C3AED", "#DB2777", "#65A30D", "#475569"]
    for n, (value, group) in enumerate(df.groupby(color_by)):
        colour = palette[n % len(palette)]
        # one legend entry per value, drawn as a circle; its outdated points (✕) follow it in and out of view
        for status, part in group.groupby("status"):
            fig.add_trace(go.Scattergl(
                x=part.x, y=part.y, mode="markers", name=str(value), legendgroup=str(value),
                showlegend=status == "active" or "active" not in set(group.status), customdata=part[["id"]].values,
                text=part.content, hovertemplate="%{text}<extra>" + f"{value} · {status}" + "</extra>",
                marker={"size": 11, "symbol": symbols[str(status)], "color": colour, "line": {"width": 1}},
            ))
if query.strip():
    vec = ui.guarded(lambda: adapter.embed_query(query))
    if vec is not None:
        xy, nearest = adapter.place_on_map(vec, matrix, coords)
        fig.add_trace(go.Scattergl(x=[xy[0]], y=[xy[1]], mode="markers+text", text=["query"], name="query",
                                   textposition="top center", marker={"size": 18, "symbol": "star", "color": "black"}))
        fig.add_trace(go.Scattergl(x=coords[nearest, 0], y=coords[nearest, 1], mode="markers", name="nearest",
                                   hoverinfo="skip", marker={"size": 20, "color": "rgba(0,0,0,0)",
                                                             "line": {"width": 2, "color": "black"}}))
        on_map = {m.id: i for i, m in enumerate(mems)}
        hits = ui.guarded(lambda: adapter.search(query, user_id=user, limit=5, statuses=None)) or []
        best = [h for h in hits if h.id in on_map]
        if best:
            fig.add_trace(go.Scattergl(
                x=[coords[on_map[h.id], 0] for h in best], y=[coords[on_map[h.id], 1] for h in best],
                mode="markers", name="best matches", hoverinfo="skip",
                marker={"size": 26, "color": "rgba(0,0,0,0)", "line": {"width": 2, "color": "crimson"}}))
        st.caption("Nearest by meaning (black rings): " + " · ".join(
            f"{mems[i].content} ({float(matrix[i] @ vec):.2f})" for i in nearest))
        st.caption("Best matches by meaning + words (red rings): " + " · ".join(
            f"{h.text} — {h.scores.explain() if h.scores else round(h.score, 2)}" for h in best))
fig.update_layout(height=600, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                  legend_title_text=color_by if color_by != "created" else None,  # the colour bar names it
                  xaxis={"visible": False}, yaxis={"visible": False}, dragmode="lasso", clickmode="event+select")
st.caption("Click a point, or draw a lasso or box around several (the tools at the top right), to list and edit "
           "them below.")
event = st.plotly_chart(fig, key="map", on_select="rerun", selection_mode=("points", "box", "lasso"))

picked = []
for point in (event.selection.points if event and event.selection else []):
    data = point.get("customdata")
    if data:
        picked.append(data[0] if isinstance(data, list) else data)
if picked:
    st.subheader(f"Selected ({len(picked)})")
    for mid in dict.fromkeys(picked):
        m = mems[index[mid]]
        a, b = st.columns([6, 1])
        a.markdown(f"`{m.type}` `{m.status}` {m.content}")
        if b.button("Edit", key=f"edit-{mid}"):
            ui.open_memory(mid)
shown_as = "UMAP" if method == "UMAP" and len(mems) >= UMAP_MIN_POINTS else "PCA"
count = (f"{len(df)} of {ui.plural(len(mems), 'memory', 'memories')} shown (as of that moment)"
         if len(df) != len(mems) else ui.plural(len(mems), "memory", "memories"))
st.caption(f"{count} · {shown_as} of {matrix.shape[1]}-d embeddings · ✕ = outdated, dotted line → what replaced it")
