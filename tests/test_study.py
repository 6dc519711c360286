"""``langadapt study``: config checks, the train step's command, and a real resumable run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import run_cli
from judge_server import JudgeServer, Reply

from langadapt_tasks.study import StudyError, environment, run_study, turn2_tasks
from langadapt_tasks.study_config import StudyConfigError, load

REPO = Path(__file__).resolve().parent.parent


def write(path: Path, config: dict) -> Path:
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


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
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        environment(load(write(tmp_path / "study.yaml", config)), "m")


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
    assert args[args.index("--output") + 1] == str(tmp_path / "out" / "adapters")
    assert args[args.index("--model") + 1] == str(tmp_path)
    assert "--max-steps" in args and "--no-packing" in args
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
    # An evaluation of an adapter that was never trained is refused, with the reason.
    (tmp_path / "out" / "adapters" / "r8-a32" / "training_complete.json").unlink()
    with pytest.raises(StudyError, match="train it first"):
        run_study(cfg, ["evaluate"], run=fake)


@pytest.mark.slow
def test_study_runs_and_a_second_run_redoes_nothing(
    smollm2_dir: Path, mt_bench_dir: Path, cmmlu_dir: Path, tmp_path: Path
) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    lora = LoraConfig(r=2, lora_alpha=8, target_modules=["q_proj"], init_lora_weights=False)
    get_peft_model(model, lora).save_pretrained(tmp_path / "zh-r2")
    server = JudgeServer().start()
    server.responder = lambda body, n: Reply("3")
    config = write(
        tmp_path / "study.yaml",
        {
            "output": "study",
            "base_model": str(smollm2_dir),
            "train": {"adapters": {"zh-r2": "zh-r2"}},
            "evaluate": {
                "tasks": ["cmmlu_langadapt_arts", "mtbench_langadapt_zh_writing"],
                "limit": 1,
                "num_fewshot": 0,
                "gen_kwargs": "max_gen_toks=8",
                "apply_chat_template": False,
                "turn2": True,  # a second run per model answers the second turn
            },
            "judge": "on",  # settings from LANGADAPT_JUDGE_* below
        },
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LANGADAPT_"))}
    env.update(
        OPENAI_API_KEY="sk-test",
        LANGADAPT_JUDGE_BASE_URL=server.base_url,
        LANGADAPT_JUDGE_MODEL="loopback-judge",
        LANGADAPT_CMMLU_DIR=str(cmmlu_dir),
        LANGADAPT_MTBENCH_DIR=str(mt_bench_dir),
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
    )
    try:
        first = run_cli(["langadapt", "study", "--config", str(config)], env=env, timeout=900)
        assert first.returncode == 0, first.stderr[-3000:]
        asked = len(server.requests)
        second = run_cli(["langadapt", "study", "--config", str(config)], env=env, timeout=300)
        assert second.returncode == 0, second.stderr[-3000:]
    finally:
        server.stop()
    assert first.stdout.count("$ ") == 6  # two models: turn 1, turn 2, judge
    assert "mtbench_langadapt_zh_mt_writing" in first.stdout and "mtbench_turn1" in first.stdout
    assert asked == 4  # one MT-Bench question per model, two turns
    assert "$ " not in second.stdout and len(server.requests) == asked  # nothing redone
    assert "evaluate zh-r2: done" in second.stdout and "judge base: done" in second.stdout
    assert "| zh-r2 |" in second.stdout  # the report's tables end the command's output
    md = (tmp_path / "study" / "report" / "report.md").read_text(encoding="utf-8")
    assert "| base |" in md and "| zh-r2 |" in md and "Δ vs base" in md
    assert "judge loopback-judge, rubric paper" in md and "3.00" in md
    assert "MT-Bench, language zh, turn 2" in md
