"""Languages as data: the shipped specs, the scaffold, and a made-up language through lm_eval."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from conftest import lm_eval_bin, run_cli
from judge_server import JudgeServer, prompt_of, verdict_for

from langadapt_tasks import language_spec
from langadapt_tasks.cli import main
from langadapt_tasks.language_spec import LanguageSpecError, parse_spec
from langadapt_tasks.mtbench_task import SYSTEM_PROMPTS

PIRATE_PROMPT = "Ahoy! Ye be a helpful pirate. Answer like a pirate, in under 50 words."
PAPER = """\
{% macro reask() -%}Arr, give me one number from 1 to 5.{%- endmacro -%}
PIRATE-JUDGE: rate this answer from 1 to 5. Reply with the number only.
Question: {{ questions[turn - 1] }}
<<<{{ tags[-1] }}>>>
{{ answers[-1] }}
<<<END-{{ tags[-1] }}>>>
Score:
"""
QUESTIONS = [
    {
        "question_id": 1,
        "category": "writing",
        "turns": ["Write a pirate's greeting.", "Now make it shorter."],
    },
    {
        "question_id": 2,
        "category": "math",
        "turns": ["How many doubloons be 2 plus 3?", "And times 2?"],
        "reference": ["5", "10"],
    },
]


def make_language(root: Path) -> Path:
    """A language of our own: the spec, two questions and a paper-rubric template."""
    (root / "judge").mkdir(parents=True)
    (root / "judge" / "paper.j2").write_text(PAPER, encoding="utf-8")
    (root / "question.jsonl").write_text(
        "".join(json.dumps(q) + "\n" for q in QUESTIONS), encoding="utf-8"
    )
    spec = {
        "code": "pir",
        "name": "Pirate",
        "system_prompt": PIRATE_PROMPT,
        "fidelity": "en",
        "judge_templates": {"paper": "judge/paper.j2"},
        "questions": {"file": "question.jsonl"},
    }
    (root / "language.yaml").write_text(json.dumps(spec), encoding="utf-8")  # JSON is YAML
    return root / "language.yaml"


def test_shipped_languages_are_specs() -> None:
    specs = language_spec.builtin_specs()
    assert set(specs) == {"zh", "tr"}
    assert SYSTEM_PROMPTS["zh"] == "你是一个乐于助人的助手,用中文回答问题,字数不超过300字"
    assert specs["zh"].fidelity == "han" and specs["zh"].multiple_choice == "cmmlu_langadapt"
    assert specs["tr"].file is not None and specs["tr"].file.is_file()
    for spec in specs.values():
        assert set(spec.judge_templates) == {"paper", "fastchat"}


def test_new_language_scaffold_has_todos_and_is_refused_until_filled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "de"
    assert main(["new-language", "de", "--name", "German", "--dir", str(folder)]) == 0
    text = (folder / "language.yaml").read_text(encoding="utf-8")
    assert "TODO" in text and "fidelity: de" in text
    assert "TODO" in (folder / "judge" / "paper.j2").read_text(encoding="utf-8")
    assert main(["language-yamls", str(folder / "language.yaml")]) == 2
    assert "system_prompt' still says TODO" in capsys.readouterr().err
    # Again: refused without --force; a shipped code is refused too.
    assert main(["new-language", "de", "--name", "German", "--dir", str(folder)]) == 2
    assert main(["new-language", "zh", "--name", "Chinese", "--dir", str(tmp_path / "zh")]) == 2
    # Fill in the spec only: the paper template and the questions still say TODO.
    text = text.replace('"TODO: system prompt in German"', "Du bist ein hilfreicher Assistent.")
    (folder / "language.yaml").write_text(text, encoding="utf-8")
    assert parse_spec(folder / "language.yaml").system_prompt.startswith("Du bist")
    assert main(["language-yamls", str(folder / "language.yaml")]) == 2
    assert "still says TODO" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"code": "Pirate!"}, "code"),
        ({"judge_templates": {"paper": "judge/none.j2"}}, "not found"),
        ({"judge_templates": {"gpt": "judge/paper.j2"}}, "judge_templates"),
        ({"fidelity": "xx"}, "py3langid"),
        ({"questions": {}}, "no source"),
    ],
)
def test_bad_specs_say_what_is_wrong(tmp_path: Path, change: dict, message: str) -> None:
    path = make_language(tmp_path)
    spec = {**json.loads(path.read_text(encoding="utf-8")), **change}
    path.write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(LanguageSpecError, match=message):
        parse_spec(path)


@pytest.mark.slow
def test_a_made_up_language_runs_through_lm_eval(smollm2_dir: Path, tmp_path: Path) -> None:
    spec = make_language(tmp_path / "pirate")
    tasks = tmp_path / "tasks"
    proc = run_cli(["langadapt", "language-yamls", str(spec), "--out", str(tasks)])
    assert proc.returncode == 0, proc.stderr
    assert (tasks / "_mtbench_langadapt_pir.yaml").is_file()
    assert not (tasks / "mtbench_langadapt_pir_coding.yaml").exists()  # no coding question
    server = JudgeServer().start()
    server.responder = lambda body, n: verdict_for(body, paper="3")
    try:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LANGADAPT_"))},
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": server.base_url,
            "LANGADAPT_JUDGE_CACHE": str(tmp_path / "cache.sqlite"),
            "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        out = tmp_path / "out"
        args = [lm_eval_bin(), "--model", "hf", "--model_args", f"pretrained={smollm2_dir}"]
        args += ["--tasks", "mtbench_langadapt_pir", "--include_path", str(tasks)]
        args += ["--gen_kwargs", "max_gen_toks=8", "--batch_size", "1", "--apply_chat_template"]
        proc = run_cli([*args, "--log_samples", "--output_path", str(out)], env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        prompts = [prompt_of(body) for body in server.requests]
    finally:
        server.stop()
    assert len(prompts) == 2 and all(p.startswith("PIRATE-JUDGE") for p in prompts)
    results = json.loads(next(out.rglob("results_*.json")).read_text(encoding="utf-8"))
    for category in ("writing", "math"):
        entry = results["results"][f"mtbench_langadapt_pir_{category}"]
        assert entry["judge_score,none"] == 3.0 and 0.0 <= entry["lang_fidelity,none"] <= 1.0
    sample = json.loads(next(out.rglob("samples_mtbench_langadapt_pir_math_*.jsonl")).read_text())
    assert sample["arguments"]["gen_args_0"]["arg_0"].startswith(
        f"<|im_start|>system\n{PIRATE_PROMPT}"
    )
    # The report reads the new language like the shipped ones.
    report = tmp_path / "report"
    proc = run_cli(["langadapt", "report", str(out), "--out", str(report)])
    assert proc.returncode == 0, proc.stderr
    md = (report / "report.md").read_text(encoding="utf-8")
    assert "MT-Bench, language pir — judge scale 1–5" in md
    assert (report / "mtbench_pir_radar.png").is_file()


def test_installed_package_carries_the_specs(tmp_path: Path) -> None:
    code = (
        "from langadapt_tasks.language_spec import builtin_specs; "
        "s = builtin_specs(); print(sorted(s), s['tr'].file.is_file(), "
        "all(p.is_file() for x in s.values() for p in x.judge_templates.values()))"
    )
    proc = run_cli([sys.executable, "-c", code], cwd=tmp_path)  # not the source tree
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['tr', 'zh'] True True"
