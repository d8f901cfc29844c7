"""The research lab: datasets, replay, evaluation, experiments, the demo data and the 2-D embedding map."""

from timemory.lab.datasets import FORMATS, Dataset, load_dataset, parse_date
from timemory.lab.demo import demo_dataset, seed_demo
from timemory.lab.demo_model import SCRIPTED_MODEL, ScriptedDemoModel
from timemory.lab.evaluate import ATTRIBUTION_K, ATTRIBUTIONS, answer_and_grade, attribute, evaluate, scores
from timemory.lab.experiments import (
    ReplayJob,
    ReplayJobs,
    configuration,
    prompts_hash,
    record_experiment,
    run_experiment,
)
from timemory.lab.projection import UMAP_MIN_POINTS, Method, place_query, project, umap_2d
from timemory.lab.replay import Granularity, ReplayReport, Unit, replay, replay_counts, units_of, user_ids

__all__ = [
    "ATTRIBUTIONS",
    "ATTRIBUTION_K",
    "SCRIPTED_MODEL",
    "FORMATS",
    "UMAP_MIN_POINTS",
    "Dataset",
    "Granularity",
    "Method",
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
    "load_dataset",
    "parse_date",
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
