"""The research lab: datasets, replay, evaluation, experiments, the demo data and the 2-D embedding map."""

from timemory.lab._datasets import FORMATS, Dataset, load_dataset
from timemory.lab._demo import demo_dataset, seed_demo
from timemory.lab._demo_model import SCRIPTED_MODEL, ScriptedDemoModel
from timemory.lab._evaluate import answer_and_grade, attribute, evaluate, scores
from timemory.lab._experiments import (
    ReplayJob,
    ReplayJobs,
    configuration,
    evaluation,
    prompts_hash,
    record_experiment,
    run_experiment,
)
from timemory.lab._projection import UMAP_MIN_POINTS, Method, place_query, project, umap_2d
from timemory.lab._replay import Granularity, ReplayReport, Unit, replay, replay_counts, units_of, user_ids
from timemory.lab._results import (
    ATTRIBUTION_K,
    ATTRIBUTIONS,
    AnswerAccuracy,
    Attribution,
    Cost,
    Distractors,
    EvaluationResult,
    MemoryCounts,
    QuestionResult,
    Retrieved,
    Scores,
    StaleScores,
    UpdateOutcome,
)

__all__ = [
    "ATTRIBUTIONS",
    "ATTRIBUTION_K",
    "SCRIPTED_MODEL",
    "FORMATS",
    "UMAP_MIN_POINTS",
    "AnswerAccuracy",
    "Attribution",
    "Cost",
    "Dataset",
    "Distractors",
    "EvaluationResult",
    "Granularity",
    "MemoryCounts",
    "Method",
    "QuestionResult",
    "Retrieved",
    "Scores",
    "StaleScores",
    "UpdateOutcome",
    "ScriptedDemoModel",
    "ReplayJob",
    "ReplayJobs",
    "ReplayReport",
    "Unit",
    "answer_and_grade",
    "attribute",
    "configuration",
    "demo_dataset",
    "evaluate",
    "evaluation",
    "load_dataset",
    "place_query",
    "project",
    "prompts_hash",
    "record_experiment",
    "replay",
    "replay_counts",
    "run_experiment",
    "scores",
    "seed_demo",
    "umap_2d",
    "units_of",
    "user_ids",
]
