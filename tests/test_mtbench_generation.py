"""MT-Bench answers are generated with FastChat's settings (issue 9, item 4).

The reference is FastChat's own answer generation, restated here from its source
(lm-sys/FastChat, fastchat/llm_judge/), not from our generator:

common.py: ``temperature_config``, copied verbatim as ``TEMPERATURE_CONFIG`` below.

gen_model_answer.py, get_model_answers() and its argument parser::

    if temperature < 1e-4:
        do_sample = False
    else:
        do_sample = True
    ...
    output_ids = model.generate(
        torch.as_tensor(input_ids).cuda(),
        do_sample=do_sample,
        temperature=temperature,
        max_new_tokens=max_new_token,
    )
    ...
    parser.add_argument("--max-new-token", type=int, default=1024, ...)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from conftest import lm_eval_bin, run_cli, task_manager
from in_process import run_here

from langadapt_tasks.benchmarks import mtbench as mtbench_data
from langadapt_tasks.paths import SOURCE_TASK_DIR

TEMPERATURE_CONFIG = {  # FastChat common.py, verbatim
    "writing": 0.7,
    "roleplay": 0.7,
    "extraction": 0.0,
    "math": 0.0,
    "coding": 0.0,
    "reasoning": 0.0,
    "stem": 0.1,
    "humanities": 0.1,
}
MAX_NEW_TOKEN = 1024  # gen_model_answer.py, --max-new-token default


def fastchat_kwargs(category: str) -> dict:
    """FastChat's generate() arguments for a category, as lm-eval generation_kwargs."""
    temperature = TEMPERATURE_CONFIG[category]
    do_sample = not temperature < 1e-4
    # until=[]: FastChat stops at the model's end of turn only, as lm-eval does with no `until`.
    return {
        "until": [],
        "max_gen_toks": MAX_NEW_TOKEN,
        "do_sample": do_sample,
        "temperature": temperature,
    }


def test_the_reference_covers_every_category() -> None:
    assert set(TEMPERATURE_CONFIG) == set(mtbench_data.CATEGORIES)


@pytest.mark.parametrize("lang", ["zh", "tr"])
@pytest.mark.parametrize("mt", ["", "_mt"])
def test_checked_in_yamls_carry_fastchat_generation_kwargs(lang: str, mt: str) -> None:
    for category in TEMPERATURE_CONFIG:
        path = SOURCE_TASK_DIR / "mtbench" / f"mtbench_langadapt_{lang}{mt}_{category}.yaml"
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert config["generation_kwargs"] == fastchat_kwargs(category), path


def _turn1_samples(folder: Path, mt_bench_dir: Path) -> Path:
    """A turn-1 run's samples (answer text is input here), so the turn-2 tasks can be built."""
    folder.mkdir(parents=True)
    for lang in ("zh", "tr"):
        meta = {"mtbench_dir": str(mt_bench_dir)}
        questions = mtbench_data.load_questions(mtbench_data.data_dir(meta), lang)
        lines = [
            json.dumps(
                {
                    "doc": {"lang": lang, "turn": 1, "question_id": q["question_id"]},
                    "resps": [["answer"]],
                    "filtered_resps": ["answer"],
                }
            )
            for q in questions
        ]
        name = f"samples_mtbench_langadapt_{lang}_all_2026.jsonl"
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_lm_eval_task_objects_carry_fastchat_generation_kwargs(
    mt_bench_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setenv("LANGADAPT_HOME", str(tmp_path / "home"))
    turn1 = _turn1_samples(tmp_path / "turn1", mt_bench_dir)
    metadata = {"judge": "off", "mtbench_dir": str(mt_bench_dir), "mtbench_turn1": str(turn1)}
    groups = ["mtbench_langadapt_zh", "mtbench_langadapt_tr"]
    groups += [f"{g}_mt" for g in groups]
    tasks = task_manager(**metadata).load(groups)["tasks"]
    assert len(tasks) == 4 * len(TEMPERATURE_CONFIG)
    for name, task in tasks.items():
        category = name.rsplit("_", 1)[1]
        assert task.config.generation_kwargs == fastchat_kwargs(category), name


def test_a_language_of_your_own_gets_the_same_settings(
    mt_bench_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lm_eval.tasks import TaskManager
    from test_languages import make_language

    monkeypatch.setenv("LANGADAPT_HOME", str(tmp_path / "home"))
    spec = make_language(tmp_path / "pirate")  # questions in writing and math only
    out = tmp_path / "tasks"
    proc = run_cli(["langadapt", "language-yamls", str(spec), "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    for mt in ("", "_mt"):
        for category in ("writing", "math"):
            path = out / f"mtbench_langadapt_pir{mt}_{category}.yaml"
            config = yaml.safe_load(path.read_text(encoding="utf-8"))
            assert config["generation_kwargs"] == fastchat_kwargs(category), path
    manager = TaskManager(include_path=str(out), include_defaults=False, metadata={"judge": "off"})
    tasks = manager.load(["mtbench_langadapt_pir"])["tasks"]
    assert {n: t.config.generation_kwargs for n, t in tasks.items()} == {
        "mtbench_langadapt_pir_writing": fastchat_kwargs("writing"),
        "mtbench_langadapt_pir_math": fastchat_kwargs("math"),
    }


def _run_writing(model: Path, out: Path, mt_bench_dir: Path, gen_kwargs: str) -> dict:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LANGADAPT_"))},
        "LANGADAPT_HOME": str(out / "home"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(out / "datasets"),
        "TOKENIZERS_PARALLELISM": "false",
    }
    metadata = json.dumps({"judge": "off", "mtbench_dir": str(mt_bench_dir)})
    args = [lm_eval_bin(), "--model", "hf", "--model_args", f"pretrained={model}"]
    args += ["--tasks", "mtbench_langadapt_zh_writing", "--limit", "1", "--batch_size", "1"]
    args += ["--metadata", metadata, "--gen_kwargs", gen_kwargs, "--seed", "0,1234,7,1234"]
    args += ["--apply_chat_template", "--log_samples", "--output_path", str(out)]
    proc = run_here(args, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(next(out.rglob("results_*.json")).read_text(encoding="utf-8"))
    sample = json.loads(next(out.rglob("samples_mtbench_langadapt_zh_writing_*.jsonl")).read_text())
    return {"results": results, "sample": sample}


def test_lm_eval_records_sampling_settings_and_seed_and_greedy_is_one_setting_away(
    smollm2_dir: Path, mt_bench_dir: Path, tmp_path: Path
) -> None:
    # Default: FastChat's writing temperature, sampled; the torch seed that drives HF's
    # sampling is recorded next to it. (max_gen_toks lowered to keep the test short.)
    sampled = _run_writing(smollm2_dir, tmp_path / "sampled", mt_bench_dir, "max_gen_toks=8")
    results = sampled["results"]
    expected = {**fastchat_kwargs("writing"), "max_gen_toks": 8}
    assert results["configs"]["mtbench_langadapt_zh_writing"]["generation_kwargs"] == expected
    assert results["config"]["torch_seed"] == 7
    assert results["config"]["gen_kwargs"] == {"max_gen_toks": 8}

    # The documented switch to greedy decoding, checked against transformers' own greedy output.
    switch = "do_sample=false,temperature=0"  # as docs/mtbench.md says
    greedy = _run_writing(
        smollm2_dir, tmp_path / "greedy", mt_bench_dir, f"max_gen_toks=8,{switch}"
    )
    kwargs = greedy["results"]["configs"]["mtbench_langadapt_zh_writing"]["generation_kwargs"]
    assert kwargs == {"until": [], "max_gen_toks": 8, "do_sample": False, "temperature": 0}

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    prompt = greedy["sample"]["arguments"]["gen_args_0"]["arg_0"]
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    torch.manual_seed(12345)  # greedy output does not depend on it
    out = model.generate(ids, do_sample=False, max_new_tokens=8)
    reference = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    assert greedy["sample"]["resps"][0][0] == reference
