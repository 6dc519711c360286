"""The tasks the study adds to each model's own: its languages' knowledge tasks
(``study.knowledge``) and English retention (``study.retention``), looked up once."""

from __future__ import annotations

from collections.abc import Mapping

from langadapt_tasks.study.commands import eval_runs, model_tasks
from langadapt_tasks.study.config import ModelSpec, StudyConfig
from langadapt_tasks.study.knowledge import knowledge_tasks
from langadapt_tasks.study.layout import EvalRun
from langadapt_tasks.study.retention import retention_tasks


class Added:
    """Per model: the knowledge tasks its task list lacks (looked up once per task list);
    for every model: the retention tasks whose data can be read."""

    def __init__(self, cfg: StudyConfig, env: Mapping[str, str]) -> None:
        self.cfg, self.env = cfg, env
        self.all = knowledge_tasks(cfg.tasks, env)
        self.retention = retention_tasks(cfg, env)
        self._seen: dict[tuple[str, ...], list[str]] = {}

    def __call__(self, model: ModelSpec) -> list[str]:
        tasks = tuple(model_tasks(self.cfg, model))
        if tasks not in self._seen:
            found = knowledge_tasks(tasks, self.env) if tasks != tuple(self.cfg.tasks) else self.all
            # English's knowledge task is MMLU: already a retention run when taken.
            self._seen[tasks] = [t for t in found.added if t not in self.retention.tasks]
        return self._seen[tasks]

    @property
    def unavailable(self) -> dict[str, str]:
        """What the study skips, by benchmark name: why."""
        return {**self.all.unavailable, **self.retention.unavailable}

    def runs(self, model: ModelSpec) -> list[EvalRun]:
        """The model's lm_eval runs, the added ones included."""
        return eval_runs(self.cfg, model, self(model), self.retention.tasks)
