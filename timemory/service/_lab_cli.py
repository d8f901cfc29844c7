"""The lab's commands of ``python -m timemory``: replay a dataset, evaluate it, and reflect on a user's memories."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from timemory._facade import TiMem
from timemory.core._engine import DEFAULT_SEARCH_MODE, DEFAULT_SEARCH_SCOPE
from timemory.errors import InvalidInputError
from timemory.lab._evaluate import ATTRIBUTION_K
from timemory.lab._replay import ReplayReport
from timemory.schemas import SEARCH_MODES, SEARCH_SCOPES
from timemory.service._workers import interrupted_status
from timemory.settings import Settings


def cmd_replay(args: argparse.Namespace) -> int:
    from timemory.lab import configuration, load_dataset, run_experiment
    from timemory.providers import CachedLLM

    settings = Settings()
    tm = TiMem.from_settings(settings)
    dataset = load_dataset(Path(args.file), args.format, speaker=args.speaker)
    name = args.experiment or f"{args.user_prefix}{Path(args.file).stem}"
    config = {**configuration(tm, granularity=args.granularity, base_url=settings.openai_base_url),
              "summaries": args.summaries}
    if args.cache:
        tm = tm.variant(cache_answers=True)
    cache = tm.llm if isinstance(tm.llm, CachedLLM) else None
    config["llm_cache"] = bool(args.cache)
    with tqdm(desc=f"replaying {Path(args.file).name}", unit="exchange", disable=args.quiet) as bar:
        def progress(report: ReplayReport) -> None:
            bar.total = report.total
            bar.n = report.skipped + report.processed
            bar.set_postfix(failed=len(report.failed), skipped=report.skipped, refresh=False)
            bar.refresh()

        report, experiment = run_experiment(tm, dataset, name=name, user_prefix=args.user_prefix, config=config,
                                            granularity=args.granularity, limit=args.limit,
                                            retry_failed=args.retry_failed, reflect=args.reflect,
                                            on_progress=progress)
    for user, message_id, error in report.failed:
        print(f"failed: {user} exchange at {message_id}: {error}", file=sys.stderr)
    rate = report.processed / report.wall_seconds * 60 if report.wall_seconds else 0.0
    print(f"experiment {experiment.name}: {report.processed} exchanges run, {report.skipped} already done, "
          f"{len(report.failed)} failed, of {report.total} ({rate:.1f}/min); "
          f"{experiment.counts.get('llm_calls', 0)} LLM calls in all"
          + (f"; cache: {cache.hits} answers reused, {cache.misses} asked" if cache else ""))
    if report.stopped:
        print("stopped: run the same command again to resume", file=sys.stderr)
        return interrupted_status()  # Ctrl-C, SIGTERM or SIGHUP: each stops the replay the same way
    if report.failed:
        print("run again with --retry-failed to retry the failed exchanges", file=sys.stderr)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from timemory.lab import evaluate, load_dataset

    tm = TiMem.from_settings(Settings())
    dataset = load_dataset(Path(args.file), args.format, speaker=args.speaker)
    result = evaluate(tm, dataset, user_prefix=args.user_prefix, ks=args.k,
                      answer_with=tm.llm if args.answer else None, mode=args.mode, attribution_k=args.attribution_k,
                      scope=args.scope)
    name = args.experiment or f"{args.user_prefix}{Path(args.file).stem}"
    experiment = tm.get_experiment(name)
    if experiment is not None:
        experiment.metrics = result.to_json()
        tm.save_experiment(experiment)
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), ensure_ascii=False, indent=2), encoding="utf-8")
    recall = ", ".join(f"@{k} {v:.3f}" for k, v in result.recall_at.items())
    attribution = ", ".join(f"{n} {a.replace('_', ' ')}" for a, n in result.attribution.items())
    distractors = result.distractors
    print(f"{result.scored_questions} questions · evidence recall {recall} (scope {result.search_scope}) · among "
          f"{distractors.median} other memories (median; fewest {distractors.min}) · at "
          f"@{result.attribution_k}: {attribution}")
    print("recall by scope: " + " · ".join(f"{scope} " + ", ".join(f"@{k} {v:.3f}" for k, v in by_k.items())
                                           for scope, by_k in result.recall_by_scope.items()))
    if (stale := result.stale) is not None:
        print(f"{stale.questions} questions about something that changed · latest statement found "
              + ", ".join(f"@{k} {v:.3f}" for k, v in stale.latest_found_at.items()) + " · stale memory returned "
              + ", ".join(f"@{k} {v:.3f}" for k, v in stale.stale_returned_at.items())
              + f" · a stale memory still active for {stale.stale_active:.3f}")
    if (acc := result.answer_accuracy) is not None:
        print(f"answer accuracy {acc.accuracy} over {acc.graded} questions (judge: {acc.judge_model}; "
              "only meaningful with a capable model)")
    for category, scores in result.per_category.items():
        print(f"  category {category}: {scores.scored_questions} questions, recall "
              + ", ".join(f"@{k} {v:.3f}" for k, v in scores.recall_at.items()))
    return 0


def cmd_reflect(args: argparse.Namespace) -> int:
    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError as exc:
            raise InvalidInputError(f"--since {args.since!r} is not an ISO date or time.") from exc
    tm = TiMem.from_settings(Settings())
    if args.queue:
        job = tm.jobs.enqueue_reflection(user_id=args.user, since=since, max_groups=args.max_groups)
        print(f"queued reflection job {job.id} for {args.user}; a worker runs it (python -m timemory worker)")
        return 0
    report = tm.reflect(user_id=args.user, since=since, max_groups=args.max_groups)
    print(f"{args.user}: {report.groups} groups of {report.memories} active memories needed a look; "
          f"{len(report.runs)} asked ({report.llm_calls} LLM calls), {report.outdated} memories outdated, "
          f"{report.merged} took in a duplicate, {report.failed} groups failed"
          + (f"; {report.left} left for the next pass" if report.left else ""))
    return 1 if report.failed else 0


def add_lab_commands(sub: Any) -> None:
    formats = ["timemory", "locomo", "longmemeval"]
    s = sub.add_parser("replay", help="replay a dataset through the pipeline with its own dates (resumable)")
    s.add_argument("file")
    s.add_argument("--format", choices=formats, default="timemory")
    s.add_argument("--user-prefix", required=True, help="user ids are this prefix + the conversation's key")
    s.add_argument("--speaker", choices=["a", "b", "both"], default="both", help="LoCoMo: who is the user")
    s.add_argument("--limit", type=int, help="only the first N exchanges of the dataset")
    s.add_argument("--experiment", help="experiment name (default: prefix + file name)")
    s.add_argument("--granularity", choices=["exchange", "session"], default="exchange")
    s.add_argument("--retry-failed", action="store_true", help="run exchanges whose run failed again")
    s.add_argument("--cache", action="store_true", help="reuse the model's answers to identical requests")
    s.add_argument("--reflect", action="store_true", help="once replayed, reflect on each user's memories")
    s.add_argument("--summaries", action="store_true",
                   help="keep each session's rolling summary as a chat does, dated with the session's date")
    s.set_defaults(func=cmd_replay)

    s = sub.add_parser("evaluate", help="evidence recall@k and failure attribution of a replayed dataset")
    s.add_argument("file")
    s.add_argument("--format", choices=formats, default="timemory")
    s.add_argument("--user-prefix", required=True)
    s.add_argument("--speaker", choices=["a", "b", "both"], default="both")
    s.add_argument("--k", type=int, nargs="+", default=[1, 5, 10])
    s.add_argument("--attribution-k", type=int, default=ATTRIBUTION_K,
                   help="the k at which a question counts as found (else as a retrieval or extraction miss)")
    s.add_argument("--mode", choices=SEARCH_MODES, default=DEFAULT_SEARCH_MODE,
                   help="the search mode questions are asked with")
    s.add_argument("--scope", choices=SEARCH_SCOPES, default=DEFAULT_SEARCH_SCOPE,
                   help="what questions are searched in: the memories, the stored messages (episodes) or both; "
                        "recall of every scope is reported either way")
    s.add_argument("--json", help="write the full result (every question) to this file")
    s.add_argument("--experiment", help="save the figures on this experiment (default: prefix + file name)")
    s.add_argument("--answer", action="store_true",
                   help="also answer each question from its memories with the configured LLM, graded by it")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("reflect", help="review a user's memories for outdated ones and duplicates, and repair them")
    s.add_argument("--user", required=True)
    s.add_argument("--since", help="only memories changed at or after this ISO date or time")
    s.add_argument("--max-groups", type=int, help="ask about at most this many groups (one LLM call each)")
    s.add_argument("--queue", action="store_true", help="queue the pass for the workers instead of running it here")
    s.set_defaults(func=cmd_reflect)
