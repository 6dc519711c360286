"""The study's held-out loss runs: every model of a language scored on that language's
held-out rows (``heldout_langadapt_<code>``), one ``lm_eval`` run per model and language.

The rows are the ``heldout.jsonl`` of the (model, language) cell's first preset: the mix's
split depends only on the mix, its seed and the row counts, so every preset of a language
holds out the same rows. Base model and adapters are scored with the chat template the
adapters were trained with (the tokenizer saved with the adapter); an instruct model with
its own. In the one-model form without presets, the first of ``train.adapters`` that has a
``heldout.jsonl`` gives the rows.
"""

from __future__ import annotations

from pathlib import Path

from langadapt_tasks.benchmarks.heldout import METADATA_FILE, METADATA_TOKENIZER, task_name
from langadapt_tasks.languages.spec import builtin_specs
from langadapt_tasks.study.config import ModelSpec, StudyConfig
from langadapt_tasks.study.grid import VARIANTS
from langadapt_tasks.study.layout import HELDOUT_DIR, EvalRun, adapter_dir, eval_dir
from langadapt_train.outputs import HELDOUT


def task(code: str) -> str:
    """The language's task; a code without a shipped spec takes the generic one."""
    return task_name(code if code in builtin_specs() else "")


def source(cfg: StudyConfig, model: str, code: str) -> Path | None:
    """The adapter folder whose ``heldout.jsonl`` and tokenizer a (model, language) is
    scored with; None when the study trains nothing that holds rows out."""
    if cfg.presets:
        return adapter_dir(cfg, cfg.presets[0], model, code)
    if not cfg.is_grid:
        return next((p for p in cfg.adapters.values() if (p / HELDOUT).is_file()), None)
    return None


def heldout_runs(cfg: StudyConfig, model: ModelSpec) -> list[EvalRun]:
    """The model's held-out runs: base and instruct on every language, an adapter on its own."""
    codes = [model.language] if model.language else list(cfg.languages)
    out = []
    for code in codes:
        src = source(cfg, model.model, code)
        if src is None:
            continue
        metadata = {METADATA_FILE: str(src / HELDOUT)}
        if model.variant != VARIANTS[1]:  # not the instruct model: the adapters' template
            own = model.peft and model.variant not in cfg.presets
            metadata[METADATA_TOKENIZER] = str(model.peft if own else src)
        name = HELDOUT_DIR + (f"_{code}" if code else "")
        folder = eval_dir(cfg, model.label) / HELDOUT_DIR / code
        out.append(EvalRun(name, folder, [task(code)], None, metadata, heldout=True))
    return out
