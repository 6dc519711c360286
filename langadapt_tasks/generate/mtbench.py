"""The MT-Bench task YAMLs, generated from language specs.

``langadapt generate-yamls`` writes the shipped languages (``languages/*.yaml``)
to ``task_yamls/mtbench/``; ``langadapt language-yamls SPEC --out DIR`` writes a
language of your own to ``DIR`` (for ``lm_eval --include_path DIR``). Per language
and turn: one task per MT-Bench category and a group over them, so lm-eval's
table shows each category and the language's mean. A spec that describes its own
multiple-choice questions also gets ``mc_langadapt_<code>`` (see ``multiple_choice``); every
language gets its held-out loss task ``heldout_langadapt_<code>`` (``generate.heldout``).

Answers are generated as FastChat's ``gen_model_answer.py`` does: the sampling
temperature of the question's category (``temperature_config``), greedy below 1e-4,
up to 1024 new tokens. Each category task carries its own ``generation_kwargs``.
"""

from __future__ import annotations

from pathlib import Path

from langadapt_tasks.benchmarks.heldout import task_name
from langadapt_tasks.benchmarks.mtbench import CATEGORIES, group_name, read_questions
from langadapt_tasks.generate.heldout import TEMPLATE, heldout_config
from langadapt_tasks.generate.multiple_choice import mc_configs
from langadapt_tasks.generate.render import group_config, render, write_folder
from langadapt_tasks.languages.spec import (
    LanguageSpec,
    LanguageSpecError,
    builtin_specs,
    mc_task_name,
    parse_spec,
)
from langadapt_tasks.paths import task_dir

# lm-eval can only average across a group's tasks; judge_unscored is a count, so it is
# reported per category (and in the log and the verdict file per language).
AGGREGATES = [
    {"metric": m, "aggregation": "mean", "weight_by_size": True}
    for m in ("judge_score", "lang_fidelity")
]
SHARED = ("_mtbench_turn1_yaml", "_mtbench_turn2_yaml")

# FastChat's sampling temperature per category (fastchat/llm_judge/common.py,
# temperature_config) and answer length (gen_model_answer.py, --max-new-token 1024).
FASTCHAT_TEMPERATURE: dict[str, float] = {
    "writing": 0.7,
    "roleplay": 0.7,
    "extraction": 0.0,
    "math": 0.0,
    "coding": 0.0,
    "reasoning": 0.0,
    "stem": 0.1,
    "humanities": 0.1,
}
MAX_NEW_TOKENS = 1024


def generation_kwargs(category: str) -> dict[str, object]:
    """lm-eval ``generation_kwargs`` of one category: FastChat's temperature and length.

    FastChat samples (``do_sample=True``) unless the temperature is below 1e-4; it sets
    nothing else (top-p, top-k come from the model's generation config, as here).
    """
    temperature = FASTCHAT_TEMPERATURE[category]
    return {
        "until": [],
        "max_gen_toks": MAX_NEW_TOKENS,
        "do_sample": temperature >= 1e-4,
        "temperature": temperature,
    }


def language_configs(
    spec: LanguageSpec, categories: tuple[str, ...] = CATEGORIES
) -> dict[str, dict]:
    """File name -> YAML content for one language's category tasks and groups."""
    files: dict[str, dict] = {}
    lang = spec.code
    for turn in (1, 2):
        group = group_name(lang, turn)
        for category in categories:
            kwargs: dict[str, object] = {
                "mtbench_lang": lang,
                "mtbench_category": category,
                "mtbench_turn": turn,
            }
            if not spec.builtin:
                kwargs["mtbench_spec"] = str(spec.path)
            # No system prompt: no system message, as FastChat's own English MT-Bench.
            system = {"description": spec.system_prompt + "\n\n"} if spec.system_prompt else {}
            files[f"{group}_{category}.yaml"] = {
                "include": SHARED[turn - 1],
                "task": f"{group}_{category}",
                "task_alias": category,
                "dataset_kwargs": kwargs,
                **system,
                "generation_kwargs": generation_kwargs(category),
            }
        files[f"_{group}.yaml"] = group_config(
            group, [f"{group}_{c}" for c in categories], AGGREGATES
        )
    return files


def mtbench_configs() -> dict[str, dict]:
    """File name -> YAML content for the shipped languages."""
    files: dict[str, dict] = {}
    for spec in builtin_specs().values():
        files.update(language_configs(spec))
    return files


def write_language(spec_path: Path, out: Path) -> list[Path]:
    """Write a user-defined language's task YAMLs (and the shared templates) to ``out``.

    With a ``multiple_choice`` mapping, also its multiple-choice task (rows checked first).
    Generated files of this language that the spec no longer produces are removed.
    """
    spec = parse_spec(spec_path)
    if spec.code in builtin_specs():
        raise LanguageSpecError(
            f"{spec.path}: {spec.code!r} is a shipped language; pick another code"
        )
    for path in [*spec.judge_templates.values(), *([spec.file] if spec.file else [])]:
        if "TODO" in path.read_text(encoding="utf-8"):
            raise LanguageSpecError(f"{path} still says TODO; fill it in first")
    categories = CATEGORIES
    if spec.file:  # fail now, not in the middle of an lm_eval run
        present = {q["category"] for q in read_questions(spec.file)}
        # A few questions are enough to start: tasks only for the categories present.
        categories = tuple(c for c in CATEGORIES if c in present)
    configs = {**language_configs(spec, categories), **mc_configs(spec), **heldout_config(spec)}
    # What an earlier run wrote for this language and this one does not (e.g. its own
    # multiple-choice task, once the spec names an lm-eval task instead); other files stay.
    code = spec.code
    mine = (
        f"mtbench_langadapt_{code}_",
        f"_mtbench_langadapt_{code}.",
        f"_mtbench_langadapt_{code}_",
    )
    return write_folder(
        out,
        {name: render(config) for name, config in configs.items()},
        # the includes resolve relative to the generated files
        copies={
            **{name: task_dir() / "mtbench" / name for name in SHARED},
            TEMPLATE: task_dir() / "heldout" / TEMPLATE,
        },
        stale_prefixes=(*mine, f"{mc_task_name(code)}.yaml", f"{task_name(code)}.yaml"),
    )
