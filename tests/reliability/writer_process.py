"""One writer process for the two-writers test: ``python writer_process.py DB_URL USER FACT BARRIER_DIR``.

Runs ``process_messages`` with a scripted LLM double; the first consolidation waits until the other writer has
planned too (a file barrier), so both plan on the same memory version and one of them must re-plan.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from doubles import ScriptedLLMDouble, merge_or_skip

from timemory import TiMem
from timemory.providers import LocalEmbedder
from timemory.store import Store


def main(url: str, user: str, fact: str, barrier: str) -> None:
    embedder = LocalEmbedder()
    store = Store.from_url(url, embedding_model=embedder.name, embedding_dim=embedder.dim)
    first = {"done": False}

    def consolidate(prompt: str) -> list[dict]:  # type: ignore[type-arg]
        if not first["done"]:
            first["done"] = True
            Path(barrier, f"{os.getpid()}").touch()
            deadline = time.monotonic() + 60
            while len(os.listdir(barrier)) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
        return merge_or_skip(prompt, fact)

    llm = ScriptedLLMDouble(facts=[{"content": fact, "type": "activity"}], consolidate=consolidate)
    result = TiMem(store, embedder, llm).process_messages([{"role": "user", "content": fact}], user_id=user)
    print(json.dumps({"status": result.status, "errors": result.errors}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
