"""Lab experiments: one row per name, with the configuration, counts and metrics of its replay."""

from __future__ import annotations

import builtins

from sqlalchemy import select

from timemory.schemas import Experiment
from timemory.store._database import Database
from timemory.store._models import ExperimentRow, utcnow
from timemory.store._rows import aware


class ExperimentRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def save(self, experiment: Experiment) -> None:
        """Insert or update the experiment with this name."""
        with self._db.write() as s:
            row = s.scalars(select(ExperimentRow).where(ExperimentRow.name == experiment.name)).first()
            if row is None:
                row = ExperimentRow(id=experiment.id, name=experiment.name, created_at=utcnow())
                s.add(row)
            for key in ("dataset_path", "dataset_sha256", "dataset_format", "user_prefix", "status", "config",
                        "counts", "metrics", "wall_seconds"):
                setattr(row, key, getattr(experiment, key))
            row.updated_at = utcnow()

    def get(self, name: str) -> Experiment | None:
        with self._db.read() as s:
            row = s.scalars(select(ExperimentRow).where(ExperimentRow.name == name)).first()
            return _experiment_from(row) if row is not None else None

    def list(self) -> builtins.list[Experiment]:
        with self._db.read() as s:
            return [_experiment_from(r) for r in s.scalars(select(ExperimentRow).order_by(ExperimentRow.created_at))]


def _experiment_from(row: ExperimentRow) -> Experiment:
    return Experiment(
        id=row.id, name=row.name, dataset_path=row.dataset_path, dataset_sha256=row.dataset_sha256,
        dataset_format=row.dataset_format, user_prefix=row.user_prefix, status=row.status,
        config=dict(row.config or {}), counts=dict(row.counts or {}), metrics=dict(row.metrics or {}),
        wall_seconds=float(row.wall_seconds or 0),
        created_at=aware(row.created_at), updated_at=aware(row.updated_at),
    )
