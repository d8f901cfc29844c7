"""Topic changes in a chat session, read from embedding drift, on a hand-labelled set (``bench/data/topics.json``).

Each message of the set names its topic; a message whose topic differs from the one before is a change. The detector
is the product's (:func:`timemory.core._summaries.drift`): the newest user message against the mean of the previous
``window`` user messages since the last change it found. Every threshold is scored by precision, recall and F1 over
the messages that have a message before them; the product's default is the best F1.

``python -m bench.topics`` prints the figures; ``python -m bench --only topics`` writes the section.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .common import machine, pin_threads

DATA = Path(__file__).parent / "data" / "topics.json"
THRESHOLDS = [round(0.30 + 0.025 * i, 3) for i in range(27)]  # 0.30 .. 0.95


def detect(vectors: np.ndarray, threshold: float, window: int) -> list[bool]:
    """Per message, whether the detector calls it a change (the first message never is)."""
    from timemory.core import drift

    calls, start = [False], 0
    for i in range(1, len(vectors)):
        previous = vectors[max(start, i - window):i]
        change = drift(previous, vectors[i]) >= threshold
        calls.append(change)
        if change:
            start = i  # a summary of the old topic was made: the new one starts here
    return calls


def score(truth: list[list[bool]], calls: list[list[bool]]) -> dict[str, float]:
    pairs = [(t, c) for ts, cs in zip(truth, calls, strict=True) for t, c in zip(ts[1:], cs[1:], strict=True)]
    tp = sum(t and c for t, c in pairs)
    fp = sum(c and not t for t, c in pairs)
    fn = sum(t and not c for t, c in pairs)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3), "found": tp,
            "false": fp, "missed": fn}


def measure(windows: tuple[int, ...] = (1, 3)) -> dict[str, Any]:
    from timemory.core import SummaryPolicy
    from timemory.providers import LocalEmbedder

    pin_threads()
    conversations = json.loads(DATA.read_text())["conversations"]
    embedder = LocalEmbedder()
    truth, vectors = [], []
    for c in conversations:
        topics = [topic for topic, _ in c["messages"]]
        truth.append([False] + [topics[i] != topics[i - 1] for i in range(1, len(topics))])
        vectors.append(embedder.embed([text for _, text in c["messages"]]))
    out: dict[str, Any] = {"conversations": len(conversations), "messages": sum(len(t) for t in truth),
                           "changes": sum(sum(t) for t in truth), "default": SummaryPolicy().topic_drift,
                           "default_window": SummaryPolicy().window, "curves": {}}
    for window in windows:
        out["curves"][str(window)] = [{"threshold": t, **score(truth, [detect(v, t, window) for v in vectors])}
                                      for t in THRESHOLDS]
    return out


def best(curve: list[dict[str, Any]]) -> dict[str, Any]:
    """The threshold with the best F1 (the lower one on a tie: it misses fewer changes)."""
    return max(curve, key=lambda r: (r["f1"], -r["threshold"]))


def section(r: dict[str, Any]) -> list[str]:
    info = r.get("machine", {})
    window = str(r["default_window"])
    default = next(row for row in r["curves"][window] if row["threshold"] == r["default"])
    lines = ["## 10. Topic changes for rolling session summaries", "",
             f"Measured on {info.get('date', '—')}. A session's summary is also brought up to date when the topic "
             "changes; a change is read from embedding drift: 1 − cosine between the newest user message and the "
             f"mean of the user's previous {window} messages since the last change. The labelled set "
             f"(`bench/data/topics.json`): {r['conversations']} sessions, {r['messages']} user messages, "
             f"{r['changes']} changes of topic, written by hand. Reproduce: `python -m bench --only topics`.", "",
             "| window | threshold | precision | recall | F1 | changes found | false alarms | missed |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for w, curve in r["curves"].items():
        for row in curve:
            if row is best(curve) or row["threshold"] in (0.5, 0.6, 0.7, r["default"]):
                lines.append(f"| {w} | {row['threshold']:.3f} | {row['precision']:.2f} | {row['recall']:.2f} | "
                             f"{row['f1']:.2f} | {row['found']} | {row['false']} | {row['missed']} |")
    lines += ["", f"The default (`SummaryPolicy.topic_drift` = {r['default']}, window {window}) finds "
              f"{default['found']} of {r['changes']} changes with {default['false']} false alarms. It was chosen on "
              "this same set (too small to hold some of it out), so its F1 is an optimistic figure. A false alarm "
              "costs one summary made early; a missed change is caught by the next turn-count or idle summary.", ""]
    return lines


if __name__ == "__main__":
    result = measure()
    for w, curve in result["curves"].items():
        print(f"window {w}: best {best(curve)}")
    print(json.dumps({**result, "machine": machine()}, indent=1)[:3000])
