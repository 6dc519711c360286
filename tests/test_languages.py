"""Languages as data: the shipped specs, the scaffold, and a made-up language through lm_eval."""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from pathlib import Path

import jinja2
import pytest
import yaml
from conftest import lm_eval_bin, run_cli
from hostile import billion_laughs, run_module
from in_process import run_here
from judge_server import JudgeServer, prompt_of, verdict_for

from langadapt_tasks.cli import main
from langadapt_tasks.generate.mtbench import write_language
from langadapt_tasks.languages import spec as language_spec
from langadapt_tasks.languages.spec import LanguageSpecError, MultipleChoice, parse_spec

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

# The pirates' own multiple-choice knowledge: three choices, two few-shot examples.
MC_DESCRIPTION = "Arr, pick the right answer, matey."
MC_COLUMNS = ("question", "A", "B", "C", "answer")


def mc_rows(*rows: tuple[str, ...]) -> list[dict[str, str]]:
    return [dict(zip(MC_COLUMNS, row, strict=True)) for row in rows]


MC_DEV = mc_rows(
    ("What flies on the mast?", "A cow", "The Jolly Roger", "Soup", "B"),
    ("Where be the treasure?", "Under the X", "In the sky", "Nowhere", "A"),
)
MC_TEST = mc_rows(
    ("What do pirates sail?", "A desk", "A cloud", "A ship", "C"),
    ("Who steers the ship?", "The captain", "The parrot", "The fish", "A"),
    ("What be rum?", "A rock", "A drink", "A song", "B"),
)


def mc_prompt(row: dict[str, str]) -> str:
    """A row as the generated task shows it (written out here, not by the generator)."""
    return "\n".join([row["question"], *(f"{c}. {row[c]}" for c in "ABC"), "Me answer be:"])


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def make_language(root: Path) -> Path:
    """A language of our own: the spec, two questions, a paper-rubric template and MC rows."""
    (root / "judge").mkdir(parents=True)
    (root / "judge" / "paper.j2").write_text(PAPER, encoding="utf-8")
    write_jsonl(root / "question.jsonl", QUESTIONS)
    write_jsonl(root / "mc" / "dev.jsonl", MC_DEV)
    write_jsonl(root / "mc" / "test.jsonl", MC_TEST)
    spec = {
        "code": "pir",
        "name": "Pirate",
        "system_prompt": PIRATE_PROMPT,
        "fidelity": "en",
        "judge_templates": {"paper": "judge/paper.j2"},
        "questions": {"file": "question.jsonl"},
        "multiple_choice": {
            "test": "mc/test.jsonl",
            "dev": "mc/dev.jsonl",
            "choices": ["A", "B", "C"],
            "description": MC_DESCRIPTION,
            "answer_label": "Me answer be:",
            "num_fewshot": 2,
        },
    }
    (root / "language.yaml").write_text(json.dumps(spec), encoding="utf-8")  # JSON is YAML
    return root / "language.yaml"


def test_shipped_languages_are_specs() -> None:
    specs = language_spec.builtin_specs()
    assert set(specs) == {"zh", "tr", "en"}
    assert specs["zh"].system_prompt == "你是一个乐于助人的助手,用中文回答问题,字数不超过300字"
    assert specs["zh"].fidelity == "han" and specs["zh"].multiple_choice == "cmmlu_langadapt"
    assert specs["zh"].mc_task == "cmmlu_langadapt"
    assert specs["tr"].mc_task == "turkishmmlu_langadapt"
    shipped = Path(language_spec.__file__).resolve().parent.parent / "data"
    assert specs["tr"].file == shipped / "mt_bench" / "tr" / "question.jsonl"
    assert specs["tr"].file.is_file()  # a shipped file: missing is a packaging bug
    for code in ("zh", "tr"):
        assert set(specs[code].judge_templates) == {"paper", "paper-guarded", "fastchat-guarded"}
    # English: FastChat's MT-Bench as FastChat has it, judged with FastChat's own prompts only;
    # no system message; MMLU its knowledge task.
    fastchat = "https://raw.githubusercontent.com/lm-sys/FastChat/main/fastchat/llm_judge/data/"
    en = specs["en"]
    assert en.judge_templates == {} and en.system_prompt == "" and en.fidelity == "en"
    assert en.judge_prompts_local == "en/judge_prompts.jsonl"
    assert en.judge_prompts_url == fastchat + "judge_prompts.jsonl"
    assert en.questions_url == fastchat + "mt_bench/question.jsonl"
    assert en.reference_url == fastchat + "mt_bench/reference_answer/gpt-4.jsonl"
    assert en.mc_task == "mmlu_langadapt"
    # fastchat: MT-Bench-ZH's file from the data directory or its public source; ours for tr
    assert specs["zh"].judge_prompts is None
    assert specs["zh"].judge_prompts_url == (  # MT-Bench-ZH: GeneZC/MiniMA, mt_bench_zh/data
        "https://raw.githubusercontent.com/GeneZC/MiniMA/main/mt_bench_zh/data/judge_prompts_zh.jsonl"
    )
    assert specs["zh"].judge_prompts_local == "zh/judge_prompts_zh.jsonl"
    assert specs["tr"].judge_prompts == shipped / "judge" / "judge_prompts_tr.jsonl"
    assert specs["tr"].judge_prompts.is_file()


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
    spec = parse_spec(folder / "language.yaml")
    assert spec.system_prompt.startswith("Du bist") and spec.multiple_choice is None
    assert main(["language-yamls", str(folder / "language.yaml")]) == 2
    assert "still says TODO" in capsys.readouterr().err
    # The commented multiple-choice mapping, uncommented: its TODOs are refused until filled.
    head, mapping = text.split("# multiple_choice:\n")
    text = head + "multiple_choice:\n" + mapping.removeprefix("#").replace("\n#", "\n")
    (folder / "language.yaml").write_text(text, encoding="utf-8")
    write_jsonl(folder / "mc" / "test.jsonl", MC_TEST)
    write_jsonl(folder / "mc" / "dev.jsonl", MC_DEV)
    with pytest.raises(LanguageSpecError, match=r"'multiple_choice\.description' still says TODO"):
        parse_spec(folder / "language.yaml")
    (folder / "language.yaml").write_text(text.replace("TODO (German): ", ""), encoding="utf-8")
    mc = parse_spec(folder / "language.yaml").multiple_choice
    assert isinstance(mc, MultipleChoice) and mc.num_fewshot == 5 and mc.dev is not None
    assert mc.answer_label == "Answer:" and mc.choices == ("A", "B", "C", "D")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"code": "Pirate!"}, "code"),
        ({"judge_templates": {"paper": "judge/none.j2"}}, "not found"),
        ({"judge_templates": {"gpt": "judge/paper.j2"}}, "judge_templates"),
        ({"fidelity": "xx"}, "py3langid"),
        ({"questions": {}}, "no source"),
        ({"multiple_choice": "TODO_task_name"}, "'multiple_choice' still says TODO"),
        ({"multiple_choice": {"test": "mc/none.jsonl"}}, "test file mc/none.jsonl not found"),
        ({"multiple_choice": {"test": "mc/test.txt"}}, r"\.jsonl, \.json, \.csv file"),
        ({"multiple_choice": {"test": "mc/test.jsonl", "num_fewshot": 5}}, "no 'dev' file"),
        ({"multiple_choice": {"test": "mc/test.jsonl", "choices": ["A", "1"]}}, "must be a name"),
        (
            {"multiple_choice": {"test": "mc/test.jsonl", "shots": 5}},
            r"unknown key\(s\) multiple_choice\.shots; known keys of multiple_choice: test",
        ),
        ({"multiple_choice": {"dev": "mc/dev.jsonl"}}, "'test' is missing"),
    ],
)
def test_bad_specs_say_what_is_wrong(tmp_path: Path, change: dict, message: str) -> None:
    path = make_language(tmp_path)
    spec = {**json.loads(path.read_text(encoding="utf-8")), **change}
    path.write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(LanguageSpecError, match=message):
        parse_spec(path)


def test_multiple_choice_mapping_generates_a_task(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = make_language(tmp_path / "pirate")
    mc = parse_spec(spec).multiple_choice
    assert isinstance(mc, MultipleChoice) and mc.loader == "json"
    assert parse_spec(spec).mc_task == "mc_langadapt_pir"
    tasks = tmp_path / "tasks"
    assert main(["language-yamls", str(spec), "--out", str(tasks)]) == 0
    out = capsys.readouterr().out
    assert str(tasks / "mc_langadapt_pir.yaml") in out.splitlines()
    assert "--tasks mtbench_langadapt_pir,mtbench_langadapt_pir_mt,mc_langadapt_pir" in out
    config = yaml.safe_load((tasks / "mc_langadapt_pir.yaml").read_text(encoding="utf-8"))
    assert config["task"] == "mc_langadapt_pir" and config["dataset_path"] == "json"
    files = config["dataset_kwargs"]["data_files"]
    assert files == {"test": str(mc.test), "dev": str(mc.dev)} and Path(files["dev"]).is_absolute()
    assert (config["test_split"], config["fewshot_split"], config["num_fewshot"]) == (
        "test",
        "dev",
        2,
    )
    assert config["output_type"] == "multiple_choice" and config["doc_to_choice"] == ["A", "B", "C"]
    assert [m["metric"] for m in config["metric_list"]] == ["acc", "acc_norm"]
    assert config["description"] == MC_DESCRIPTION + "\n\n" and config["target_delimiter"] == " "
    # The prompt and the target, rendered as lm-eval renders them (StrictUndefined).
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    text = env.from_string(config["doc_to_text"]).render(**MC_TEST[0])
    assert text == "What do pirates sail?\nA. A desk\nB. A cloud\nC. A ship\nMe answer be:"
    assert env.from_string(config["doc_to_target"]).render(**MC_TEST[0]) == "2"


def test_multiple_choice_task_name_generates_nothing(tmp_path: Path) -> None:
    spec = make_language(tmp_path / "pirate")
    # First the mapping form: the language's own task is written ...
    tasks = tmp_path / "tasks"
    assert (tasks / "mc_langadapt_pir.yaml") in write_language(spec, tasks)
    (tasks / "mc_langadapt_pirx.yaml").write_text("task: another_language\n", encoding="utf-8")
    data = {**json.loads(spec.read_text(encoding="utf-8")), "multiple_choice": "pirate_trivia"}
    spec.write_text(json.dumps(data), encoding="utf-8")
    assert parse_spec(spec).mc_task == "pirate_trivia"
    written = write_language(spec, tasks)
    # ... and removed when the spec names an lm-eval task instead; other files stay.
    assert not (tasks / "mc_langadapt_pir.yaml").exists()
    assert (tasks / "mc_langadapt_pirx.yaml").exists()
    # The MT-Bench tasks of the questions' categories, turn 1 and 2, and no mc_ task.
    categories = {q["category"] for q in QUESTIONS}
    expected = {"_mtbench_turn1_yaml", "_mtbench_turn2_yaml"}
    expected |= {"_heldout_yaml", "heldout_langadapt_pir.yaml"}  # every language's held-out loss
    for mt in ("", "_mt"):
        expected |= {f"_mtbench_langadapt_pir{mt}.yaml"}
        expected |= {f"mtbench_langadapt_pir{mt}_{c}.yaml" for c in categories}
    assert sorted(p.name for p in written) == sorted(expected)


@pytest.mark.parametrize(
    ("name", "rows", "message"),
    [
        ("test.jsonl", [MC_TEST[0], {**MC_TEST[1], "C": None}], "line 2: column 'C' is missing"),
        ("test.jsonl", [*MC_TEST[:2], {**MC_TEST[2], "answer": "D"}], "line 3: answer 'D' is not"),
        ("dev.jsonl", [{**MC_DEV[0], "question": " "}], "line 1: column 'question' is empty"),
        ("dev.jsonl", [{**MC_DEV[0], "hint": "x"}, MC_DEV[1]], "columns .* differ from"),
        ("test.csv", [MC_TEST[0], {**MC_TEST[1], "answer": "a"}], "line 3: answer 'a' is not"),
        ("test.csv", [{k: v for k, v in MC_TEST[0].items() if k != "B"}], "column 'B' is missing"),
    ],
)
def test_bad_multiple_choice_rows_name_file_and_line(
    tmp_path: Path, name: str, rows: list[dict], message: str
) -> None:
    spec = make_language(tmp_path / "pirate")
    data = json.loads(spec.read_text(encoding="utf-8"))
    path = tmp_path / "pirate" / "mc" / name
    if name.endswith(".csv"):  # test and dev as CSV; the bad file is the test file
        dev = tmp_path / "pirate" / "mc" / "dev.csv"
        for file, content in ((path, rows), (dev, MC_DEV)):
            with file.open("w", encoding="utf-8", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(content[0]))
                writer.writeheader()
                writer.writerows(content)
        data["multiple_choice"] |= {"test": "mc/test.csv", "dev": "mc/dev.csv"}
        spec.write_text(json.dumps(data), encoding="utf-8")
    else:
        write_jsonl(path, [{k: v for k, v in r.items() if v is not None} for r in rows])
    with pytest.raises(LanguageSpecError, match=message) as err:
        write_language(spec, tmp_path / "tasks")
    assert str(err.value).startswith(str(path))  # the file, then the line
    assert not (tmp_path / "tasks").exists()  # nothing written


@pytest.mark.slow
def test_a_made_up_language_runs_through_lm_eval(tiny_llama_dir: Path, tmp_path: Path) -> None:
    spec = make_language(tmp_path / "pirate")
    tasks = tmp_path / "tasks"
    proc = run_cli(["langadapt", "language-yamls", str(spec), "--out", str(tasks)])
    assert proc.returncode == 0, proc.stderr
    assert (tasks / "_mtbench_langadapt_pir.yaml").is_file()
    assert not (tasks / "mtbench_langadapt_pir_coding.yaml").exists()  # no coding question
    assert (tasks / "mc_langadapt_pir.yaml").is_file()
    server = JudgeServer().start()
    server.responder = lambda body, n: verdict_for(body, paper="3")
    try:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LANGADAPT_"))},
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": server.base_url,
            "LANGADAPT_JUDGE_CACHE": str(tmp_path / "cache.sqlite"),
            "LANGADAPT_HOME": str(tmp_path / "home"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_CACHE": str(tmp_path / "datasets"),
            "TOKENIZERS_PARALLELISM": "false",
        }
        out = tmp_path / "out"
        args = [lm_eval_bin(), "--model", "hf", "--model_args", f"pretrained={tiny_llama_dir}"]
        args += ["--tasks", "mtbench_langadapt_pir,mc_langadapt_pir", "--include_path", str(tasks)]
        args += ["--gen_kwargs", "max_gen_toks=8", "--batch_size", "1", "--apply_chat_template"]
        proc = run_here([*args, "--log_samples", "--output_path", str(out)], env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        prompts = [prompt_of(body) for body in server.requests]
    finally:
        server.stop()
    assert len(prompts) == 2 and all(p.startswith("PIRATE-JUDGE") for p in prompts)
    results = json.loads(next(out.rglob("results_*.json")).read_text(encoding="utf-8"))
    for category in ("writing", "math"):
        entry = results["results"][f"mtbench_langadapt_pir_{category}"]
        (logged,) = samples_of(out, f"mtbench_langadapt_pir_{category}")  # one question each
        assert entry["judge_score,none"] == 3.0
        assert entry["lang_fidelity,none"] == logged["lang_fidelity"]
    sample = json.loads(next(out.rglob("samples_mtbench_langadapt_pir_math_*.jsonl")).read_text())
    assert sample["arguments"]["gen_args_0"]["arg_0"].startswith(
        f"<|im_start|>system\n{PIRATE_PROMPT}"
    )
    # The pirates' multiple choice: the instruction, the two dev rows as shots, the right target.
    samples = sorted(samples_of(out, "mc_langadapt_pir"), key=lambda s: s["doc_id"])
    assert len(samples) == len(MC_TEST)
    # acc: the mean over the test rows of "the highest logged log-likelihood is the target's";
    # the choices are one letter each, so acc_norm is the same.
    correct = []
    for sample in samples:
        loglikelihoods = [float(resp[0]) for resp in sample["filtered_resps"]]
        best = loglikelihoods.index(max(loglikelihoods))
        correct.append(float(best == int(sample["target"])))
        assert (sample["acc"], sample["acc_norm"]) == (correct[-1], correct[-1])
    entry = results["results"]["mc_langadapt_pir"]
    assert entry["acc,none"] == entry["acc_norm,none"] == pytest.approx(sum(correct) / 3)
    # SmolLM2's chat template (the tiny Llama has its tokenizer); lm_eval gives each dev row
    # (the shots) a turn of its own.
    turn = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
    system = f"<|im_start|>system\n{MC_DESCRIPTION}\n\n<|im_end|>\n"
    shots = "".join(turn.format(mc_prompt(r)) + f"{r['answer']}<|im_end|>\n" for r in MC_DEV)
    for sample, row in zip(samples, MC_TEST, strict=True):
        assert sample["doc"] == row and sample["target"] == str("ABC".index(row["answer"]))
        requests = list(sample["arguments"].values())
        assert [r["arg_1"] for r in requests] == ["A", "B", "C"]
        assert requests[0]["arg_0"] == system + shots + turn.format(mc_prompt(row))
    # The report reads the new language like the shipped ones.
    report = tmp_path / "report"
    proc = run_cli(["langadapt", "report", str(out), "--out", str(report)])
    assert proc.returncode == 0, proc.stderr
    md = (report / "report.md").read_text(encoding="utf-8")
    assert "MT-Bench, language pir — judge scale 0–5" in md  # rubric paper: 0 counts
    assert (report / "mtbench_pir_radar.png").is_file()


def samples_of(out: Path, task: str) -> list[dict]:
    """lm-eval's logged samples of ``task`` under ``out``."""
    (path,) = out.rglob(f"samples_{task}_*.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_installed_package_carries_the_specs(tmp_path: Path) -> None:
    code = (
        "from langadapt_tasks.languages.spec import builtin_specs; "
        "s = builtin_specs(); print(sorted(s), s['tr'].file.is_file(), "
        "all(p.is_file() for x in s.values() for p in x.judge_templates.values()))"
    )
    proc = run_cli([sys.executable, "-c", code], cwd=tmp_path)  # not the source tree
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['en', 'tr', 'zh'] True True"


# --- judge templates are checked and sandboxed; only specs the user named (issue 10) ---------


@pytest.mark.parametrize(
    ("rubric", "text", "message"),
    [
        ("paper", PAPER.replace("{% macro reask", "{% macro reask("), "syntax error"),
        ("paper", PAPER + "{{ secret_value }}", r"undefined variable\(s\) secret_value"),
        ("paper", PAPER.split("{%- endmacro -%}")[1], "no reask"),
        ("paper", PAPER + "{{ answers[3] }}", "fails to render"),
        ("paper-guarded", PAPER.replace("<<<{{ tags[-1] }}>>>", ""), "not fenced"),
        ("paper", PAPER + "{{ cycler.__init__.__globals__.os.getcwd() }}", "sandbox"),
        ("paper", PAPER + "{{ ''.__class__.__mro__[1].__subclasses__() }}", "sandbox"),
    ],
)
def test_bad_judge_templates_are_refused_when_the_spec_is_loaded(
    tmp_path: Path, rubric: str, text: str, message: str
) -> None:
    path = make_language(tmp_path)
    (tmp_path / "judge" / "paper.j2").write_text(text, encoding="utf-8")
    spec = {**json.loads(path.read_text(encoding="utf-8"))}
    spec["judge_templates"] = {rubric: "judge/paper.j2"}
    path.write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(LanguageSpecError, match=message) as err:
        parse_spec(path)
    assert str(path) in str(err.value) and "judge/paper.j2" in str(err.value)
    assert main(["language-yamls", str(path), "--out", str(tmp_path / "tasks")]) == 2
    assert not (tmp_path / "tasks").exists()


def test_templates_render_in_jinja_sandbox(tmp_path: Path) -> None:
    from langadapt_tasks.languages.judge_templates import load_template

    (tmp_path / "t.j2").write_text("{{ cycler.__init__.__globals__.os.getcwd() }}")
    with pytest.raises(jinja2.exceptions.SecurityError):
        load_template(tmp_path / "t.j2").render()


def test_old_fastchat_template_key_says_what_to_do(tmp_path: Path) -> None:
    path = make_language(tmp_path)
    spec = {**json.loads(path.read_text(encoding="utf-8"))}
    spec["judge_templates"] = {"fastchat": "judge/paper.j2"}
    path.write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(LanguageSpecError, match="fastchat-guarded"):
        parse_spec(path)


def _no_named_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh process's view: no spec named by the user yet."""
    monkeypatch.setenv("LANGADAPT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(language_spec.ENV_SPECS, raising=False)
    monkeypatch.setattr(language_spec, "_REGISTERED", {})
    monkeypatch.setattr(language_spec, "_TRUSTED", set())


def test_spec_named_in_a_file_is_loaded_only_if_the_user_named_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_named_specs(tmp_path, monkeypatch)
    path = make_language(tmp_path / "pirate")
    with pytest.raises(LanguageSpecError, match=language_spec.ENV_SPECS):
        language_spec.register(str(path), trusted=False)  # e.g. a samples file's doc.spec
    assert "pir" not in language_spec._REGISTERED
    monkeypatch.setenv(language_spec.ENV_SPECS, str(path))
    assert language_spec.register(str(path), trusted=False).code == "pir"
    monkeypatch.delenv(language_spec.ENV_SPECS)
    assert language_spec.register(str(path), trusted=False).code == "pir"  # named already
    # A shipped spec is always fine.
    zh = language_spec.builtin_specs()["zh"]
    assert language_spec.register(zh.path, trusted=False) is zh


def test_fidelity_off_is_accepted_as_documented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langadapt_tasks.benchmarks.fidelity import fidelity

    monkeypatch.setenv("LANGADAPT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(language_spec, "_REGISTERED", {})
    path = make_language(tmp_path / "pirate")
    spec = json.loads(path.read_text(encoding="utf-8"))
    spec.pop("fidelity")
    # Written as a user writes YAML: a bare `off` (YAML 1.1 reads it as false).
    text = yaml.safe_dump(spec, allow_unicode=True) + "fidelity: off\n"
    path.write_text(text, encoding="utf-8")
    assert parse_spec(path).fidelity == "off"
    language_spec.register(path)
    assert math.isnan(fidelity("Ahoy, matey!", "pir"))


@pytest.mark.parametrize("code", ["../x", "x/../../y", "DE", "d", "de-x", "/tmp/x", "de\n"])
def test_new_language_refuses_codes_that_are_not_identifiers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], code: str
) -> None:
    monkeypatch.setenv("LANGADAPT_HOME", str(tmp_path / "home"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert main(["new-language", code, "--name", "X"]) == 2
    assert "2–8 lowercase letters/digits" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["work"]  # nothing beside it
    assert list((tmp_path / "work").iterdir()) == []


def test_new_language_writes_fastchat_prompts_with_the_language_clause(
    tmp_path: Path, mt_bench_dir: Path
) -> None:
    folder = tmp_path / "de"
    assert main(["new-language", "de", "--name", "German", "--dir", str(folder)]) == 0
    rows = [
        json.loads(x)
        for x in (folder / "judge" / "judge_prompts.jsonl").read_text().split("\n")
        if x
    ]
    zh = {
        json.loads(x)["name"]: json.loads(x)
        for x in (mt_bench_dir / "zh" / "judge_prompts_zh.jsonl").read_text().splitlines()
    }
    # Every single-answer and pairwise prompt of MT-Bench-ZH's file.
    names = sorted(n for n in zh if n.startswith(("single-", "pair-")))
    assert sorted(row["name"] for row in rows) == names and len(names) == 8
    for row in rows:
        for key in ("system_prompt", "prompt_template"):
            # MT-Bench-ZH's text with German for Chinese: exactly its change, for German.
            assert row[key] == zh[row["name"]][key].replace(
                "English or Chinese", "English or German"
            )


def test_langadapt_judge_refuses_a_spec_named_only_by_a_samples_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langadapt_tasks.judge import rejudge

    _no_named_specs(tmp_path, monkeypatch)
    spec = make_language(tmp_path / "pirate")
    doc = {"lang": "pir", "turn": 1, "question_id": 1, "category": "writing"}
    doc |= {"turns": ["Q?"], "spec": str(spec)}
    samples = tmp_path / "out" / "samples_mtbench_langadapt_pir_writing_2026.jsonl"
    samples.parent.mkdir()
    samples.write_text(json.dumps({"doc": doc, "resps": [["A."]]}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=language_spec.ENV_SPECS) as err:
        rejudge.load_items([samples])
    assert f"{samples}, line 1" in str(err.value)
    assert "pir" not in language_spec._REGISTERED


# --- hostile specs: alias bombs, unknown keys, oversize fields, failed writes -----------


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, by relative path, with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def edit_spec(path: Path, **change: object) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text("utf-8")), **change}), "utf-8")


def test_an_alias_bomb_in_a_spec_is_refused_quickly(tmp_path: Path) -> None:
    spec = make_language(tmp_path / "pirate")
    data = json.loads(spec.read_text(encoding="utf-8"))
    spec.write_text(
        yaml.safe_dump(data, allow_unicode=True) + "notes:\n" + billion_laughs(indent=2), "utf-8"
    )
    tasks = tmp_path / "tasks"
    proc = run_module("langadapt_tasks", ["language-yamls", str(spec), "--out", str(tasks)])
    assert proc.returncode == 2, proc.stderr
    assert f"{spec}: line " in proc.stderr and "billion laughs" in proc.stderr
    assert "Traceback" not in proc.stderr and not tasks.exists()
    with pytest.raises(LanguageSpecError, match=r"aliases .* more than 100,000 values"):
        parse_spec(spec)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"systme_prompt": "Arr"}, r"unknown key\(s\) systme_prompt; .*did you mean system_prompt"),
        (
            {"questions": {"file": "question.jsonl", "fiel": "q.jsonl"}},
            r"unknown key\(s\) questions\.fiel; known keys of questions: local, file, hub, url, "
            r"reference_url; did",
        ),
        (
            {"questions": {"hub": {"repo": "a/b", "question": "q.jsonl", "refrence": "r"}}},
            r"unknown key\(s\) questions\.hub\.refrence; .*did you mean reference",
        ),
        ({"judge_prompts": {"flie": "p.jsonl"}}, r"judge_prompts\.flie; .*did you mean file"),
        ({"judge_templates": {"papper": "judge/paper.j2"}}, r"judge_templates\.papper; .*paper"),
        (
            {"multiple_choice": {"test": "mc/test.jsonl", "num_fewshots": 0}},
            r"multiple_choice\.num_fewshots; .*did you mean num_fewshot",
        ),
    ],
)
def test_unknown_spec_keys_are_refused_with_a_suggestion(
    tmp_path: Path, change: dict, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = make_language(tmp_path / "pirate")
    edit_spec(spec, **change)  # these were accepted and ignored
    with pytest.raises(LanguageSpecError, match=message) as err:
        parse_spec(spec)
    assert str(err.value).startswith(f"{spec}: unknown key(s) ")
    assert main(["language-yamls", str(spec), "--out", str(tmp_path / "tasks")]) == 2
    assert f"{spec}: unknown key(s) " in capsys.readouterr().err
    assert not (tmp_path / "tasks").exists()


def test_the_shipped_specs_and_the_scaffold_use_only_known_keys(tmp_path: Path) -> None:
    for spec in language_spec.builtin_specs().values():
        data = yaml.safe_load(spec.path.read_text(encoding="utf-8"))
        assert set(data) <= set(language_spec.SPEC_KEYS), spec.path
    assert main(["new-language", "de", "--name", "German", "--dir", str(tmp_path / "de")]) == 0
    text = (tmp_path / "de" / "language.yaml").read_text(encoding="utf-8")
    head, mapping = text.split("# multiple_choice:\n")
    text = head + "multiple_choice:\n" + mapping.removeprefix("#").replace("\n#", "\n")
    data = yaml.safe_load(text)
    assert set(data) <= set(language_spec.SPEC_KEYS)
    assert set(data["multiple_choice"]) <= set(language_spec.MC_KEYS)


def test_an_oversize_system_prompt_is_refused_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = make_language(tmp_path / "pirate")
    tasks = tmp_path / "tasks"
    edit_spec(spec, system_prompt="Arr! " * (1 << 20))  # 5 MiB: 77 MB of YAML, in 36 s
    assert main(["language-yamls", str(spec), "--out", str(tasks)]) == 2
    err = capsys.readouterr().err
    assert f"{spec}: 'system_prompt' is 5,242,880 bytes; the limit is 16,384 bytes" in err
    assert not tasks.exists()
    # Over an earlier generation: the folder is left as it was.
    edit_spec(spec, system_prompt=PIRATE_PROMPT)
    assert main(["language-yamls", str(spec), "--out", str(tasks)]) == 0
    before = snapshot(tasks)
    edit_spec(spec, system_prompt="Arr! " * 3300)  # just over 16 KiB
    assert main(["language-yamls", str(spec), "--out", str(tasks)]) == 2
    assert "'system_prompt' is 16,500 bytes" in capsys.readouterr().err
    assert snapshot(tasks) == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "P" * 300}, r"'name' is 300 bytes; the limit is 256 bytes"),
        ({"native_name": "Ç" * 200}, r"'native_name' is 400 bytes"),
        (
            {"multiple_choice": {"test": "mc/test.jsonl", "description": "x" * 20000}},
            r"'multiple_choice\.description' is 20,000 bytes; the limit is 16,384",
        ),
        (
            {"multiple_choice": {"test": "mc/test.jsonl", "answer_label": "y" * 300}},
            r"'multiple_choice\.answer_label' is 300 bytes",
        ),
        ({"judge_templates": {"paper": "judge/big.j2"}}, r"judge_templates\.paper: .*big\.j2 is"),
        (
            {"questions": {"file": "big.jsonl"}},
            r"big\.jsonl, line 1: turns\[0\] is 40,000 bytes; the limit is 32,768",
        ),
    ],
)
def test_oversize_fields_and_files_name_the_field(
    tmp_path: Path, change: dict, message: str
) -> None:
    spec = make_language(tmp_path / "pirate")
    big = PAPER.replace("Score:", "Score:{# " + "x" * 70000 + " #}")
    (tmp_path / "pirate" / "judge" / "big.j2").write_text(big, encoding="utf-8")
    long = {**QUESTIONS[0], "turns": ["q" * 40000, "Now make it shorter."]}
    write_jsonl(tmp_path / "pirate" / "big.jsonl", [long])
    edit_spec(spec, **change)
    with pytest.raises(ValueError, match=message) as err:
        write_language(spec, tmp_path / "tasks")
    assert str(err.value).startswith(str(tmp_path / "pirate"))
    assert not (tmp_path / "tasks").exists()


def test_a_failed_write_leaves_the_previous_tasks_folder_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = make_language(tmp_path / "pirate")
    tasks = tmp_path / "tasks"
    write_language(spec, tasks)
    (tasks / "notes.txt").write_text("mine\n", encoding="utf-8")  # the user's own file
    before = snapshot(tasks)
    # A new prompt (every task changes) and no own multiple-choice task (one file goes).
    edit_spec(spec, system_prompt="Ahoy, answer in pirate.", multiple_choice="pirate_trivia")
    real_write = Path.write_text
    calls = []

    def failing_write(self: Path, *args: object, **kwargs: object) -> int:
        calls.append(self)
        if len(calls) > 3:
            raise OSError(28, "No space left on device")
        return real_write(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(Path, "write_text", failing_write)
        with pytest.raises(OSError, match="No space left"):
            write_language(spec, tasks)
    assert len(calls) == 4  # it failed after writing three files
    assert snapshot(tasks) == before  # byte for byte, no file added or removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pirate", "tasks"]  # no staging left
    # A failure while the files are renamed into place is undone as well.
    real_replace = os.replace
    renames = []

    def failing_replace(source: object, target: object) -> None:
        renames.append(target)
        if len(renames) == 5:
            raise OSError(5, "Input/output error")
        real_replace(source, target)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", failing_replace)
        with pytest.raises(OSError, match="Input/output error"):
            write_language(spec, tasks)
    assert snapshot(tasks) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pirate", "tasks"]
    # Written for real: every task has the new prompt, the stale task is gone, notes stay.
    written = write_language(spec, tasks)
    after = snapshot(tasks)
    assert "mc_langadapt_pir.yaml" in before and "mc_langadapt_pir.yaml" not in after
    assert after["notes.txt"] == b"mine\n"
    assert set(after) == {p.name for p in written} | {"notes.txt"}
    for name in after:
        if name.startswith("mtbench_langadapt_pir"):
            assert "Ahoy, answer in pirate." in after[name].decode("utf-8")
