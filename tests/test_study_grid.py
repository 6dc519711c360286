"""The study's grid: models × languages × presets in one config, and ``--plan``."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import pytest
from conftest import run_cli
from in_process import run_here

from langadapt_tasks.study.config import StudyConfigError, load

REPO = Path(__file__).resolve().parent.parent
PAPER = REPO / "configs" / "study-paper.yaml"


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def paper_commands(out: Path) -> tuple[list[list[str]], list[list[str]]]:
    """The study's experiment, written out from its description (not from the code):
    Meta-Llama-3-8B and Mistral-7B-v0.1, each with its instruct model and its own chat
    template; Chinese (zh-mix; CMMLU, MT-Bench zh) and Turkish (tr-mix; TurkishMMLU,
    MT-Bench tr); QLoRA presets r8-a32, r16-a32, r16-a48. Multiple choice 5-shot; MT-Bench
    without shots, apart, then its second turns after the model's own first answers."""
    models = {
        "llama3": ("meta-llama/Meta-Llama-3-8B", "meta-llama/Meta-Llama-3-8B-Instruct", "llama3"),
        "mistral": ("mistralai/Mistral-7B-v0.1", "mistralai/Mistral-7B-Instruct-v0.1", "mistral"),
    }
    languages = {"zh": ("zh-mix", "cmmlu_langadapt"), "tr": ("tr-mix", "turkishmmlu_langadapt")}
    presets = ["r8-a32", "r16-a32", "r16-a48"]
    train = []
    for name, (base, _, template) in models.items():
        for lang, (mix, _) in languages.items():
            shared = str(REPO / "configs" / "paper-qlora.yaml")
            folder = str(out / "adapters" / name / lang)
            train.append(
                [
                    *(_bin("langadapt-train"), "sweep", "--config", shared),
                    *("--presets", ",".join(presets), "--output_dir", folder),
                    *("--model_name_or_path", base, "--data", mix, "--chat_template", template),
                ]
            )

    def runs(label: str, model_args: str, adapter: bool, langs: list[str]) -> list[list[str]]:
        folder = out / "eval" / label
        common = ["--batch_size", "auto"]
        mc = [languages[lang][1] for lang in langs]
        mt = [f"mtbench_langadapt_{lang}" for lang in langs]

        def lm_eval(model: str, args: str, tasks: list[str]) -> list[str]:
            tasks_arg = ",".join(tasks)
            return [_bin("lm_eval"), "--model", model, "--model_args", args, "--tasks", tasks_arg]

        generation = "langadapt-hf" if adapter else "hf"
        gen_args = model_args + (",shared_prefix=False" if adapter else "")
        turn2 = [f"{t}_mt" for t in mt]
        tail = ["--gen_kwargs", "max_gen_toks=1024", "--apply_chat_template", "--metadata"]
        return [
            lm_eval("langadapt-hf", model_args, mc)
            + common
            + ["--output_path", str(folder), "--log_samples"]
            + ["--use_cache", str(folder / "lm_cache" / "requests"), "--num_fewshot", "5"]
            + tail
            + [json.dumps({"judge": "off"})],
            lm_eval(generation, gen_args, mt)
            + common
            + ["--output_path", str(folder / "mtbench"), "--log_samples"]
            + ["--use_cache", str(folder / "mtbench" / "lm_cache" / "requests")]
            + tail
            + [json.dumps({"judge": "off"})],
            lm_eval(generation, gen_args, turn2)
            + common
            + ["--output_path", str(folder / "turn2"), "--log_samples"]
            + ["--use_cache", str(folder / "turn2" / "lm_cache" / "requests")]
            + tail
            + [json.dumps({"judge": "off", "mtbench_turn1": str(folder / "mtbench")})],
        ] + [heldout(label, model_args, lang) for lang in langs]

    def heldout(label: str, model_args: str, lang: str) -> list[str]:
        """Held-out loss on the rows the first preset held out, every row, no chat-template
        flag (the task renders the contexts): base model and adapters with the adapters'
        saved tokenizer (their chat template), the instruct model with its own."""
        folder = out / "eval" / label / "heldout" / lang
        cell = out / "adapters" / label.split("/")[0] / lang / presets[0]
        metadata = {"judge": "off", "heldout_file": str(cell / "heldout.jsonl")}
        if not label.endswith("/instruct"):
            metadata["heldout_tokenizer"] = str(cell)
        return [
            *(_bin("lm_eval"), "--model", "langadapt-hf", "--model_args", model_args),
            *("--tasks", f"heldout_langadapt_{lang}", "--batch_size", "auto"),
            *("--output_path", str(folder), "--log_samples"),
            *("--use_cache", str(folder / "lm_cache" / "requests")),
            *("--metadata", json.dumps(metadata)),
        ]

    evaluate = []
    for name, (base, instruct, _) in models.items():
        evaluate += runs(f"{name}/base", f"pretrained={base}", False, ["zh", "tr"])
        evaluate += runs(f"{name}/instruct", f"pretrained={instruct}", False, ["zh", "tr"])
        for lang in languages:
            for preset in presets:
                adapter = out / "adapters" / name / lang / preset
                args = f"pretrained={base},peft={adapter}"
                evaluate += runs(f"{name}/{lang}/{preset}", args, True, [lang])
    return train, evaluate


def plan_output(config: Path, out: Path, **extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LANGADAPT_"))}
    env.update(OUT=str(out), LANGADAPT_HOME=str(out / "home"), HF_HUB_OFFLINE="1", **extra)
    proc = run_cli(["langadapt", "study", "--config", str(config), "--plan"], env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not out.exists() or sorted(p.name for p in out.iterdir()) == []  # nothing written
    return proc.stdout


def commands(output: str, tool: str) -> list[list[str]]:
    prompt = "    $ "
    found = [
        shlex.split(line[len(prompt) :]) for line in output.splitlines() if line.startswith(prompt)
    ]
    return [c for c in found if Path(c[0]).name == tool]


def test_the_papers_plan_is_the_studys_experiment(tmp_path: Path) -> None:
    out = tmp_path / "paper"
    output = plan_output(PAPER, out)
    train, evaluate = paper_commands(out)
    assert commands(output, "langadapt-train") == train
    assert commands(output, "lm_eval") == evaluate
    # Totals: 12 adapters; 16 models (per base model: base, instruct, six adapters); MT-Bench:
    # base and instruct answer both languages, each adapter its own: 800 per base model.
    # lm_eval runs: 3 per model, and held-out loss: 2 for base and instruct, 1 per adapter.
    assert "training runs: 12 (12 to do)" in output
    assert "evaluated models: 16" in output
    assert "lm_eval runs: 68 (68 to do)" in output
    assert "MT-Bench answers: 1600 first turns + 1600 second turns" in output
    assert "judge requests, rubric paper: 3200" in output
    assert output.count("[to do] judge ") == 16


def write(path: Path, config: dict) -> Path:
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


def grid(tmp_path: Path, **changes: object) -> dict:
    (tmp_path / "train.yaml").write_text("method: lora\n", encoding="utf-8")
    config: dict = {
        "output": "out",
        "models": {
            "m1": {"base": "org/base-1", "instruct": "org/chat-1", "chat_template": "llama3"},
            "m2": {"base": "org/base-2", "overrides": {"per_device_train_batch_size": 1}},
        },
        "languages": {
            "zh": {"data": "zh-mix", "tasks": ["cmmlu_langadapt", "mtbench_langadapt_zh"]},
            "tr": {"data": "tr-mix", "tasks": ["mtbench_langadapt_tr"]},
        },
        "train": {"config": "train.yaml", "presets": ["r8-a32"], "overrides": {"max_steps": 2}},
        "report": {"baseline": "base"},
    }
    for key, value in changes.items():
        section, _, sub = key.partition("__")
        if sub:
            config[section] = {**config.get(section, {}), sub: value}
        else:
            config[section] = value
    return config


def test_the_grid_names_its_models_by_path_and_each_cell_gets_its_settings(
    tmp_path: Path,
) -> None:
    from langadapt_tasks.study.commands import models, train_cells, train_command

    cfg = load(write(tmp_path / "study.yaml", grid(tmp_path)))
    bases = {"m1": "org/base-1", "m2": "org/base-2"}
    evaluated = {m.label: m for m in models(cfg, bases)}
    assert list(evaluated) == [
        "m1/base", "m1/instruct", "m1/zh/r8-a32", "m1/tr/r8-a32",
        "m2/base", "m2/zh/r8-a32", "m2/tr/r8-a32",
    ]  # fmt: skip
    union = ["cmmlu_langadapt", "mtbench_langadapt_zh", "mtbench_langadapt_tr"]
    assert list(evaluated["m1/instruct"].tasks or cfg.tasks) == union  # once, on every language
    assert evaluated["m2/tr/r8-a32"].tasks == ("mtbench_langadapt_tr",)
    assert evaluated["m2/tr/r8-a32"].peft == str(tmp_path / "out/adapters/m2/tr/r8-a32")
    sweeps = {c.name: train_command(cfg, c, cfg.presets) for c in train_cells(cfg, bases)}
    assert list(sweeps) == ["m1/zh", "m1/tr", "m2/zh", "m2/tr"]
    m1_zh, m2_tr = sweeps["m1/zh"], sweeps["m2/tr"]
    assert m1_zh[m1_zh.index("--chat_template") + 1] == "llama3" and "--chat_template" not in m2_tr
    assert m2_tr[m2_tr.index("--data") + 1] == "tr-mix"
    assert m2_tr[m2_tr.index("--output_dir") + 1] == str(tmp_path / "out/adapters/m2/tr")
    assert "--per-device-train-batch-size" in m2_tr and "--per-device-train-batch-size" not in m1_zh
    assert m1_zh[m1_zh.index("--max-steps") + 1] == "2"


def test_the_one_model_form_keeps_its_labels_and_folders(tmp_path: Path) -> None:
    from langadapt_tasks.study.commands import eval_runs, models

    (tmp_path / "train.yaml").write_text("method: lora\n", encoding="utf-8")
    config = {
        "output": "out",
        "base_model": "org/m",
        "instruct_model": "org/m-chat",
        "train": {"config": "train.yaml", "presets": ["r8-a32", "r16-a48"]},
        "evaluate": {"tasks": ["cmmlu_langadapt"]},
    }
    cfg = load(write(tmp_path / "study.yaml", config))
    assert not cfg.is_grid
    evaluated = models(cfg, {"": "org/m"})
    assert [(m.label, m.peft) for m in evaluated] == [
        ("base", None),
        ("instruct", None),
        ("r8-a32", str(tmp_path / "out/adapters/r8-a32")),
        ("r16-a48", str(tmp_path / "out/adapters/r16-a48")),
    ]
    assert eval_runs(cfg, evaluated[2])[0].folder == tmp_path / "out/eval/r8-a32"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"report__baseline": "llama"}, r"report\.baseline: 'llama' is none of the study's models"),
        ({"languages": {"zh": {"data": "zh-mix"}}}, r"languages\.zh\.tasks: missing"),
        (
            {"train__presets": ["r8-a32", "r8-a32"]},
            r"train\.presets\[1\]: 'r8-a32' is listed twice",
        ),
        (
            {"models": {"m1": {"base": "org/b", "chat_template": "vicuna"}}},
            r"models\.m1\.chat_template: 'vicuna' is neither a shipped template",
        ),
        ({"models": {"base": {"base": "org/b"}}}, r"models\.base: a label is"),
        ({"models": {"m1": {"instruct": "org/c"}}}, r"models\.m1\.base: missing"),
        (
            {"models": {"m1": {"base": "org/b", "instrct": "x"}}},
            r"unknown key\(s\) models\.m1\.instrct.*did you mean instruct\?",
        ),
        (
            {"languages": {"zh": {"tasks": ["a"], "dat": "x"}}},
            r"languages\.zh\.dat.*did you mean data\?",
        ),
        ({"base_model": "org/b"}, r"base_model: the grid names its models under 'models'"),
        ({"evaluate": {"tasks": ["x"]}}, r"evaluate\.tasks: the grid's tasks are per language"),
        (
            {"languages": {"zh": {"tasks": ["a", "b", "a"]}}},
            r"languages\.zh\.tasks: a task is listed twice",
        ),
        (
            {
                "models": {"m1": {"base": "org/b", "overrides": {"max_steps": 1}}},
                "languages": {"zh": {"tasks": ["a"], "overrides": {"max_steps": 3}}},
            },
            r"models\.m1\.overrides\.max_steps: 1 contradicts languages\.zh\.overrides\.max_steps",
        ),
    ],
)
def test_grid_config_errors_name_the_key(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(StudyConfigError, match=message) as err:
        load(write(tmp_path / "study.yaml", grid(tmp_path, **changes)))
    assert str(tmp_path / "study.yaml") in str(err.value)


def test_the_plan_after_adding_a_preset_trains_only_the_new_cells(tmp_path: Path) -> None:
    for cell in ("m1/zh", "m1/tr", "m2/zh", "m2/tr"):
        done = tmp_path / "out" / "adapters" / cell / "r8-a32"
        done.mkdir(parents=True)
        (done / "training_complete.json").write_text("{}", encoding="utf-8")
    added = grid(tmp_path, train__presets=["r8-a32", "r16-a48"])
    config = write(tmp_path / "study.yaml", added)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    output = plan_output(config, tmp_path / "unused")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    trains = [line for line in output.splitlines() if "] train " in line]
    assert trains == [
        f"[to do] train {c}: to do: r16-a48" for c in ("m1/zh", "m1/tr", "m2/zh", "m2/tr")
    ]
    assert "training runs: 8 (4 to do)" in output


@pytest.mark.slow
def test_a_real_grid_trains_each_cell_once_and_a_second_run_does_nothing(
    tiny_llama_dir: Path,
    cmmlu_dir: Path,
    mt_bench_dir: Path,
    sft_dir: Path,
    tmp_path: Path,
) -> None:
    """Two models (both the tiny random Llama with SmolLM2's tokenizer; one with an instruct
    model) × Chinese (the shared Alpaca rows) and Turkish (a made-up file in the Alpaca
    schema) × one preset, one step each, the commands run in this process: every cell
    trained once, every adapter evaluated on its language's task only, base and instruct
    once on both; the report has every model; a second run starts nothing."""
    (tmp_path / "train.yaml").write_text(
        # One step at a learning rate that changes the outputs (no warm-up: its first step
        # has rate 0), so each adapter passes the study's adapter check.
        "method: lora\nlearning_rate: 0.01\nwarmup_steps: 0\nmax_steps: 1\n"
        "max_rows: 8\nheldout: 2\nmax_length: 64\n"
        "per_device_train_batch_size: 2\ngradient_accumulation_steps: 1\nsave_steps: 1\n"
        "lora_target_modules: [q_proj, v_proj]\nreport_to: [none]\n",
        encoding="utf-8",
    )
    turkish = REPO / "tests" / "fixtures" / "sft" / "alpaca_tr_tiny.json"
    config = write(
        tmp_path / "study.yaml",
        {
            "output": "study",
            "models": {
                "smol": {"base": str(tiny_llama_dir)},
                "tiny": {"base": str(tiny_llama_dir), "instruct": str(tiny_llama_dir)},
            },
            "languages": {
                "zh": {
                    "data": str(sft_dir / "alpaca_zh_demo.json"),
                    "tasks": ["cmmlu_langadapt_arts"],
                },
                "tr": {
                    "data": str(turkish),
                    "tasks": ["mtbench_langadapt_tr_writing"],
                    "overrides": {"system_prompt": "Türkçe yanıt ver."},
                },
            },
            "train": {"config": "train.yaml", "presets": ["r8-a32"]},
            # English retention is tested on its own (test_retention, test_study).
            "evaluate": {
                "limit": 1,
                "gen_kwargs": "max_gen_toks=4",
                "batch_size": 4,
                "retention": [],
            },
            "judge": "off",
        },
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LANGADAPT_"))}
    env.update(
        LANGADAPT_HOME=str(tmp_path / "home"),
        LANGADAPT_CMMLU_DIR=str(cmmlu_dir),
        LANGADAPT_MTBENCH_DIR=str(mt_bench_dir),  # the trainer decontaminates against it
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    study = ["langadapt", "study", "--config", str(config)]
    first = run_here(study, env=env)
    again = run_here(study, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    ran = [line for line in first.stdout.splitlines() if "] $ " in line]
    sweeps = [line for line in ran if "langadapt-train sweep" in line]
    assert len(sweeps) == 4  # one per (model, language), each trained once
    out = tmp_path / "study"
    for cell in ("smol/zh", "smol/tr", "tiny/zh", "tiny/tr"):
        assert (out / "adapters" / cell / "r8-a32" / "adapter_config.json").is_file()
    evals = [shlex.split(line.split("] $ ", 1)[1]) for line in ran if "lm_eval" in line]
    tasks = {
        args[args.index("--output_path") + 1]: args[args.index("--tasks") + 1] for args in evals
    }
    both = "cmmlu_langadapt_arts,mtbench_langadapt_tr_writing"
    assert tasks == {
        str(out / "eval/smol/base"): both,
        str(out / "eval/smol/zh/r8-a32"): "cmmlu_langadapt_arts",
        str(out / "eval/smol/tr/r8-a32"): "mtbench_langadapt_tr_writing",
        str(out / "eval/tiny/base"): both,
        str(out / "eval/tiny/instruct"): both,
        str(out / "eval/tiny/zh/r8-a32"): "cmmlu_langadapt_arts",
        str(out / "eval/tiny/tr/r8-a32"): "mtbench_langadapt_tr_writing",
        # Held-out loss: base and instruct on both languages, each adapter on its own.
        **{
            str(out / f"eval/{name}/heldout/{lang}"): f"heldout_langadapt_{lang}"
            for name, langs in (
                ("smol/base", "zh tr"),
                ("smol/zh/r8-a32", "zh"),
                ("smol/tr/r8-a32", "tr"),
                ("tiny/base", "zh tr"),
                ("tiny/instruct", "zh tr"),
                ("tiny/zh/r8-a32", "zh"),
                ("tiny/tr/r8-a32", "tr"),
            )
            for lang in langs.split()
        },
    }
    for args in evals:  # a held-out run renders its contexts itself and scores every row
        if "heldout_langadapt" in args[args.index("--tasks") + 1]:
            assert "--apply_chat_template" not in args and "--limit" not in args
            metadata = json.loads(args[args.index("--metadata") + 1])
            folder = args[args.index("--output_path") + 1]
            model = "smol" if "/smol/" in folder else "tiny"
            cell = out / "adapters" / model / Path(folder).name / "r8-a32"
            assert metadata["heldout_file"] == str(cell / "heldout.jsonl")
            # Base and adapters with the adapters' template; the instruct model its own.
            tokenizer = None if "/instruct/" in folder else str(cell)
            assert metadata.get("heldout_tokenizer") == tokenizer
    # The same mix and seed hold out the same rows for every model of a language.
    for lang in ("zh", "tr"):
        smol, tiny = (
            out / "adapters" / m / lang / "r8-a32" / "heldout.jsonl" for m in ("smol", "tiny")
        )
        assert smol.read_bytes() == tiny.read_bytes() and smol.read_bytes()
    report = (out / "report" / "report.md").read_text(encoding="utf-8")
    assert "Bought and cost (zh): each model − smol/base" in report
    assert "Held-out loss: bits per byte" in report and (out / "report" / "heldout.png").is_file()
    for name in ("smol/base", "smol/zh/r8-a32", "tiny/instruct", "tiny/tr/r8-a32"):
        assert f"| {name} |" in report
    assert again.returncode == 0, again.stderr[-3000:]
    assert "] $ " not in again.stdout  # nothing retrained or re-evaluated


@pytest.mark.slow
@pytest.mark.e2e  # a minute of training and scoring: make test-e2e
def test_adapters_trained_a_few_dozen_steps_lower_the_held_out_loss(
    tiny_llama_dir: Path, cmmlu_dir: Path, mt_bench_dir: Path, sft_dir: Path, tmp_path: Path
) -> None:
    """A real effect, end to end: two presets trained 30 steps on the Chinese rows score
    the mix's held-out rows (the same file for both, never trained on) with fewer bits per
    byte than the base model, by more than two standard errors of the paired difference."""
    data = sft_dir / "alpaca_zh_demo.json"
    (tmp_path / "train.yaml").write_text(
        "method: lora\nlearning_rate: 0.01\nwarmup_steps: 0\nmax_steps: 30\n"
        "max_rows: 72\nheldout: 8\nmax_length: 64\nper_device_train_batch_size: 4\n"
        "gradient_accumulation_steps: 1\nsave_steps: 30\nreport_to: [none]\n"
        "lora_target_modules: [q_proj, v_proj, o_proj]\ndecontaminate: false\n",
        encoding="utf-8",
    )
    config = write(
        tmp_path / "study.yaml",
        {
            "output": "study",
            "models": {"tiny": {"base": str(tiny_llama_dir)}},
            "languages": {"zh": {"data": str(data), "tasks": ["cmmlu_langadapt_arts"]}},
            "train": {"config": "train.yaml", "presets": ["r8-a32", "r16-a48"]},
            "evaluate": {"limit": 1, "batch_size": 8, "retention": []},
            "judge": "off",
        },
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LANGADAPT_"))}
    env.update(
        LANGADAPT_HOME=str(tmp_path / "home"),
        LANGADAPT_CMMLU_DIR=str(cmmlu_dir),
        LANGADAPT_MTBENCH_DIR=str(mt_bench_dir),  # English MT-Bench: the tokenizer reference
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    proc = run_here(["langadapt", "study", "--config", str(config)], env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "study"
    cells = {p: out / "adapters" / "tiny" / "zh" / p for p in ("r8-a32", "r16-a48")}
    # Every preset holds out the same rows: the mix's split, rebuilt here from the data.
    held = [(c / "heldout.jsonl").read_text(encoding="utf-8") for c in cells.values()]
    assert held[0] == held[1]
    from langadapt_train.data import mix

    built = mix.build(mix.resolve(str(data)), None, max_rows=72, heldout=8)
    assert [json.loads(line)["messages"] for line in held[0].splitlines()] == built.heldout
    texts = {m["content"] for conv in built.heldout for m in conv if m["role"] == "assistant"}
    assert not texts & {m["content"] for conv in built.train for m in conv}

    def bpb(label: str) -> float:
        (results,) = (out / "eval" / label / "heldout" / "zh").rglob("results_*.json")
        row = json.loads(results.read_text(encoding="utf-8"))["results"]["heldout_langadapt_zh"]
        return row["bits_per_byte,none"]

    base = bpb("tiny/base")
    report = json.loads((out / "report" / "report.json").read_text(encoding="utf-8"))
    (bought,) = [t for t in report["tables"] if t["key"].startswith("bought")]
    assert bought["columns"][0].startswith("Δ held-out bits/byte")
    for preset in cells:
        label = f"tiny/zh/{preset}"
        cell = bought["rows"][label][0]
        assert bpb(label) < base
        assert cell["value"] == pytest.approx(bpb(label) - base, abs=1e-9)
        assert cell["value"] < -2 * cell["stderr"] and cell["note"] == ""
    # Tokenizer cost, recounted here: Chinese per character, English per word.
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    zh = [m["content"] for conv in built.heldout for m in conv]
    en = [
        t
        for line in (mt_bench_dir / "en" / "question.jsonl").read_text("utf-8").splitlines()
        for t in json.loads(line)["turns"]
    ]

    def count(texts: list[str]) -> int:
        return sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)

    (cost,) = [t for t in report["tables"] if t["key"] == "tokenizer_cost"]
    assert cost["columns"] == [
        "zh: tokens / 1,000 bytes",
        "zh: tokens / character",
        "en: tokens / 1,000 bytes",
        "en: tokens / word",
    ]
    expected = [
        1000 * count(zh) / sum(len(t.encode()) for t in zh),
        count(zh) / sum(len("".join(t.split())) for t in zh),
        1000 * count(en) / sum(len(t.encode()) for t in en),
        count(en) / sum(len(t.split()) for t in en),
    ]
    assert [c["value"] for c in cost["rows"]["tiny"]] == pytest.approx(expected, rel=1e-12)
