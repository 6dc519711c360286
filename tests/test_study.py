"""``langadapt study``: config checks, the train step's command, and a real resumable run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import run_cli
from in_process import run_here
from judge_server import JudgeServer, Reply, verdict_for

from langadapt_tasks.study.commands import turn2_tasks
from langadapt_tasks.study.config import ModelSpec, StudyConfigError, load
from langadapt_tasks.study.run import StudyError, environment, evaluate, run_study

REPO = Path(__file__).resolve().parent.parent


def write(path: Path, config: dict) -> Path:
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


def study_env(tmp_path: Path, cmmlu_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a real ``langadapt study`` run: no judge or langadapt settings of
    the machine, its own LANGADAPT_HOME, the local CMMLU, no Hub."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LANGADAPT_"))}
    env.update(
        LANGADAPT_HOME=str(tmp_path / "home"),
        LANGADAPT_CMMLU_DIR=str(cmmlu_dir),
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        **extra,
    )
    return env


def test_example_config_loads() -> None:
    cfg = load(REPO / "configs" / "study-smollm2.yaml")
    assert cfg.presets == ["r8-a32", "r16-a48"] and cfg.judge is None
    assert cfg.train_config == REPO / "configs" / "smollm2-zh-demo.yaml"
    assert cfg.tasks[0] == "cmmlu_langadapt" and cfg.limit == 1


def test_turn2_tasks_follow_the_turn1_tasks() -> None:
    tasks = ["cmmlu_langadapt", "mtbench_langadapt_zh", "mtbench_langadapt_tr_math"]
    assert turn2_tasks(tasks) == ["mtbench_langadapt_zh_mt", "mtbench_langadapt_tr_mt_math"]
    assert turn2_tasks(["mtbench_langadapt_zh_mt"]) == []


def test_variables_defaults_and_judge_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LANGADAPT_T_DATA", raising=False)
    monkeypatch.setenv("LANGADAPT_T_JUDGE", "on")
    config = {
        "output": "o",
        "base_model": "m",
        "data_dir": "${LANGADAPT_T_DATA:-data}",
        "judge": "${LANGADAPT_T_JUDGE:-off}",
    }
    cfg = load(write(tmp_path / "study.yaml", config))
    assert cfg.data_dir == tmp_path / "data" and cfg.judge == {}  # on: LANGADAPT_JUDGE_* decide
    monkeypatch.setenv("LANGADAPT_T_DATA", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("LANGADAPT_T_JUDGE", "off")
    cfg = load(write(tmp_path / "study.yaml", config))
    assert cfg.data_dir == tmp_path / "elsewhere" and cfg.judge is None
    # Judge settings in the config reach the judge step as LANGADAPT_JUDGE_* variables.
    config["judge"] = {"model": "gpt-4.1", "rubric": "fastchat"}
    env = environment(load(write(tmp_path / "study.yaml", config)), "m")
    assert env["LANGADAPT_JUDGE_MODEL"] == "gpt-4.1" and env["LANGADAPT_JUDGE_RUBRIC"] == "fastchat"
    assert env["DATA_DIR"] == str(tmp_path / "elsewhere")
    config["judge"] = {"api_key": "sk-secret"}
    with pytest.raises(StudyConfigError, match="OPENAI_API_KEY"):
        load(write(tmp_path / "study.yaml", config))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"base_model": "m"}, "'output' is missing"),
        ({"output": "o", "base_model": "m", "evalute": {}}, "unknown key"),
        ({"output": "o", "base_model": "m", "train": {"presets": ["r8-a32"]}}, "train.config"),
        ({"output": "o", "base_model": "m", "judge": ["gpt-4.1"]}, "judge"),
        ({"output": "o", "base_model": "${NO_SUCH_VAR_LANGADAPT}"}, "NO_SUCH_VAR_LANGADAPT"),
        ({"output": "o", "base_model": "m", "train": {"adapters": {"a": "nope"}}}, "not a folder"),
    ],
)
def test_bad_configs_are_explained(tmp_path: Path, config: dict, message: str) -> None:
    with pytest.raises(StudyConfigError, match=message):
        load(write(tmp_path / "study.yaml", config))


def test_train_step_runs_the_sweep_once_and_skips_finished_presets(tmp_path: Path) -> None:
    (tmp_path / "train.yaml").write_text("model: x\n", encoding="utf-8")
    cfg = load(
        write(
            tmp_path / "study.yaml",
            {
                "output": "out",
                "base_model": str(tmp_path),
                "train": {
                    "config": "train.yaml",
                    "presets": ["r8-a32", "r16-a48"],
                    "overrides": {"max_steps": 4, "packing": False},
                },
            },
        )
    )
    calls: list[list[str]] = []

    def fake(args: list[str], env: dict[str, str]) -> int:
        calls.append(args)
        return 0

    run_study(cfg, ["train"], run=fake)
    (args,) = calls
    assert args[1:3] == ["sweep", "--config"] and "r8-a32,r16-a48" in args
    # The command as langadapt-train's own parser reads it.
    from langadapt_train.parser import build_parser, given_flags

    flags, _ = given_flags(build_parser("langadapt-train sweep", "", True), args[2:])
    assert flags["output_dir"] == str(tmp_path / "out" / "adapters")
    assert flags["model_name_or_path"] == str(tmp_path)
    assert (flags["max_steps"], flags["packing"]) == (4, False)
    # r8-a32 finished: only r16-a48 is trained next time; both finished: no call at all.
    for preset in ("r8-a32", "r16-a48"):
        done = tmp_path / "out" / "adapters" / preset
        done.mkdir(parents=True)
        (done / "training_complete.json").write_text("{}", encoding="utf-8")
        calls.clear()
        run_study(cfg, ["train"], run=fake)
        assert [a[a.index("--presets") + 1] for a in calls] == (
            ["r16-a48"] if preset == "r8-a32" else []
        )
    # A finished preset trained with other settings (its saved langadapt_train.yaml) stops
    # the study, naming the folder and the setting; nothing is deleted or retrained.
    stale = tmp_path / "out" / "adapters" / "r16-a48"
    (stale / "langadapt_train.yaml").write_text("max_steps: 3\npacking: false\n", "utf-8")
    calls.clear()
    with pytest.raises(
        StudyError,
        match=r"r16-a48 was trained with other settings \(max_steps: "
        r"trained with 3, asked for 4\)\. Delete that folder",
    ):
        run_study(cfg, ["train"], run=fake)
    assert calls == [] and (stale / "training_complete.json").is_file()
    (stale / "langadapt_train.yaml").write_text("max_steps: 4.0\npacking: false\n", "utf-8")
    run_study(cfg, ["train"], run=fake)  # the same settings, as YAML wrote them: done
    assert calls == []
    # An lm_eval that exits 0 without writing results is not a finished evaluation.
    with pytest.raises(StudyError, match="exited 0 but wrote 0 results files"):
        run_study(cfg, ["evaluate"], run=fake)
    assert not (tmp_path / "out" / "eval" / "base" / "langadapt_run.json").exists()
    # An evaluation of an adapter that was never trained is refused, with the reason.
    (tmp_path / "out" / "adapters" / "r8-a32" / "training_complete.json").unlink()
    adapter = ModelSpec("r8-a32", str(tmp_path), str(tmp_path / "out" / "adapters" / "r8-a32"))
    with pytest.raises(StudyError, match="train it first"):
        evaluate(cfg, adapter, {}, fake)


# The study's commands in processes of their own (as users run it: ``make test-e2e``), and
# the same commands run in this process (``in_process.run_here``).
RUNNERS = [
    pytest.param(run_here, id="in-process"),
    pytest.param(run_cli, id="processes", marks=pytest.mark.e2e),
]


@pytest.mark.slow
def test_an_adapter_that_changes_nothing_stops_the_study(
    tiny_llama_dir: Path, cmmlu_dir: Path, tmp_path: Path
) -> None:
    """The check every engine gets: run as an engine that does not apply the adapter would
    (langadapt-hf's own probe off: check_adapter=False), a LoRA adapter that adds nothing
    (PEFT's default B = 0) gives the base model's log-likelihoods, and the study stops
    without recording the run."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(
        tmp_path / "zero"
    )
    config = write(
        tmp_path / "study.yaml",
        {
            "output": "study",
            "base_model": str(tiny_llama_dir),
            "train": {"adapters": {"zero": "zero"}},
            "evaluate": {
                "tasks": ["cmmlu_langadapt_arts"],
                "limit": 2,
                "num_fewshot": 0,
                "engine_args": "check_adapter=False",
            },
            "judge": "off",
        },
    )
    env = study_env(tmp_path, cmmlu_dir)
    proc = run_here(["langadapt", "study", "--config", str(config)], env=env)
    assert proc.returncode != 0
    # Two questions of four choices: eight log-likelihoods, every one the base model's.
    assert "evaluate zero: all 8 log-likelihoods equal the base model's" in proc.stderr
    assert "was not applied" in proc.stderr
    out = tmp_path / "study" / "eval"
    assert (out / "base" / "langadapt_run.json").is_file()
    assert not (out / "zero" / "langadapt_run.json").exists()  # redone on the next run


@pytest.mark.slow
@pytest.mark.parametrize("runner", RUNNERS)
def test_study_runs_and_a_second_run_redoes_nothing(
    runner, tiny_llama_dir: Path, mt_bench_dir: Path, cmmlu_dir: Path, tmp_path: Path
) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    lora = LoraConfig(r=2, lora_alpha=8, target_modules=["q_proj"], init_lora_weights=False)
    get_peft_model(model, lora).save_pretrained(tmp_path / "zh-r2")
    server = JudgeServer().start()
    judge_up = {"now": False}  # the first run meets a judge outage
    # The paper rubric's verdict for Chinese, FastChat's for English (retention).
    server.responder = lambda body, n: (
        verdict_for(body, paper="3") if judge_up["now"] else Reply(status=503)
    )
    config = write(
        tmp_path / "study.yaml",
        {
            "output": "study",
            "base_model": str(tiny_llama_dir),
            "train": {"adapters": {"zh-r2": "zh-r2"}},
            "evaluate": {
                "tasks": ["cmmlu_langadapt_arts", "mtbench_langadapt_zh_writing"],
                "limit": 1,
                "num_fewshot": 0,  # CMMLU only: MT-Bench runs apart, without it
                "gen_kwargs": "max_gen_toks=8",
                "apply_chat_template": False,
                "turn2": True,  # a third run per model answers the second turn
                # English retention: English MT-Bench, both turns, judged with FastChat's prompts.
                "retention": ["mtbench_langadapt_en_writing"],
            },
            "judge": "on",  # settings from LANGADAPT_JUDGE_* below
        },
    )
    env = study_env(
        tmp_path,
        cmmlu_dir,
        OPENAI_API_KEY="sk-test",
        LANGADAPT_JUDGE_BASE_URL=server.base_url,
        LANGADAPT_JUDGE_MODEL="loopback-judge",
        LANGADAPT_JUDGE_MAX_RETRIES="0",
        LANGADAPT_MTBENCH_DIR=str(mt_bench_dir),
    )
    study = ["langadapt", "study", "--config", str(config)]
    out = tmp_path / "study"
    try:
        down = runner(study, env=env, timeout=900)
        judge_up["now"] = True
        up = runner(study, env=env, timeout=300)
        asked = len(server.requests)
        # An evaluation killed while lm_eval wrote its samples: no record, a samples file gone.
        main = out / "eval" / "base"
        (main / "langadapt_run.json").unlink()
        next(main.rglob("samples_cmmlu_langadapt_arts_*.jsonl")).unlink()
        redo = runner(study, env=env, timeout=300)
        again = runner(study, env=env, timeout=300)
    finally:
        server.stop()
    # The outage: every answer unscored; the study says so, writes the report, exits 1.
    assert down.returncode == 1, down.stderr[-3000:]
    # Two models: CMMLU, MT-Bench, turn 2, English MT-Bench and its turn 2, judge zh and en.
    assert down.stdout.count("$ ") == 14
    assert "mtbench_langadapt_zh_mt_writing" in down.stdout and "mtbench_turn1" in down.stdout
    mt_runs = [line for line in down.stdout.splitlines() if "--tasks mtbench_langadapt" in line]
    assert len(mt_runs) == 8 and not any("--num_fewshot" in line for line in mt_runs)
    assert "judge base: 4 of 4 MT-Bench answers without a score" in down.stdout
    judged = [line for line in down.stdout.splitlines() if "langadapt judge" in line]
    assert [line.split("judge ", 1)[1].split(" ", 1)[1] for line in judged[:2]] == [
        "--languages zh",
        "--languages en --rubric fastchat",
    ]
    assert "judging is not complete" in down.stderr and "allow_unscored" in down.stderr
    assert "NOT ALL JUDGED: 1 unscored by the judge" in down.stdout  # the report's note
    # The judge is back: only the judging is redone, and it scores every answer.
    assert up.returncode == 0, up.stderr[-3000:]
    assert up.stdout.count("$ ") == 4 and up.stdout.count("langadapt judge") == 4
    assert "evaluate zh-r2: done" in up.stdout and "evaluate base turn2: done" in up.stdout
    assert "| zh-r2 |" in up.stdout  # the report's tables end the command's output
    # Only the interrupted run is redone; its answers (from lm-eval's cache) keep their verdicts.
    assert redo.returncode == 0, redo.stderr[-3000:]
    assert redo.stdout.count("$ ") == 1 and "--tasks cmmlu_langadapt_arts" in redo.stdout
    assert "judge base: done (4 answers)" in redo.stdout
    assert again.returncode == 0 and "$ " not in again.stdout and len(server.requests) == asked
    md = (out / "report" / "report.md").read_text(encoding="utf-8")
    assert "| base |" in md and "| zh-r2 |" in md and "Δ vs base" in md
    assert "1 of 1 answers scored (judge loopback-judge, rubric paper)" in md and "3.00" in md
    assert "MT-Bench, language zh, turn 2" in md and "NOT ALL JUDGED" not in md
    # English retention: FastChat's scale, and its cost in the adapter's ledger.
    assert "1 of 1 answers scored (judge loopback-judge, rubric fastchat)" in md
    assert "Δ English MT-Bench mean" in md and "7.00" in md
    assert "Run with lm_eval --limit" in md and "base: 0" in md  # recorded limit and n-shot
