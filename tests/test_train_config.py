"""langadapt-train: the config object, presets, and the CLI's promised errors (no model)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from langadapt_train import config
from langadapt_train.cli import main


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    return path


def test_yaml_then_flags_then_preset_precedence(tmp_path: Path) -> None:
    cfg_file = write_yaml(
        tmp_path / "c.yaml",
        {
            "model": "m",
            "output": "./out",
            "preset": "r8-a32",
            "lora_alpha": 64,
            "target_modules": ["q_proj", "v_proj"],
            "packing": True,
        },
    )
    cfg = config.load(cfg_file, {"max_length": "256", "seed": 7})
    assert cfg.lora_r == 8  # from the preset
    assert cfg.lora_alpha == 64  # YAML beats the preset
    assert cfg.learning_rate == pytest.approx(1.6e-5)
    assert cfg.max_length == 256 and cfg.seed == 7  # flags, parsed from strings
    assert cfg.target_modules == ["q_proj", "v_proj"] and cfg.packing is True
    assert cfg.output == str((tmp_path / "out").resolve())  # relative to the config file
    # A flag beats the YAML.
    assert config.load(cfg_file, {"lora_alpha": 16}).lora_alpha == 16


def test_defaults_follow_the_study() -> None:
    cfg = config.build(None, {"model": "m", "output": "o"})
    assert cfg.method == "qlora"
    assert cfg.target_modules == ["q_proj", "k_proj", "v_proj"]
    assert cfg.learning_rate == pytest.approx(1.6e-5)
    assert 0 < cfg.lora_dropout < 1
    assert cfg.assistant_only_loss


@pytest.mark.parametrize(
    "preset,r,alpha", [("r8-a32", 8, 32), ("r16-a32", 16, 32), ("r16-a48", 16, 48)]
)
def test_presets(preset: str, r: int, alpha: int) -> None:
    cfg = config.build(None, {"model": "m", "output": "o", "preset": preset})
    assert (cfg.lora_r, cfg.lora_alpha, cfg.learning_rate) == (r, alpha, pytest.approx(1.6e-5))


def test_saved_config_reloads_to_the_same_object(tmp_path: Path) -> None:
    cfg = config.build(
        None,
        {
            "model": "m",
            "output": str(tmp_path),
            "preset": "r16-a32",
            "target_modules": "all-linear",
            "report_to": "none",
        },
    )
    saved = cfg.save(tmp_path)
    again = config.load(saved)
    assert again == cfg


@pytest.mark.parametrize(
    "data,key",
    [
        ({"model": "m", "output": "o", "lora_rank": 8}, "lora_rank"),  # unknown key
        ({"model": "m", "output": "o", "lora_r": "eight"}, "lora_r"),  # wrong type
        ({"model": "m", "output": "o", "lora_r": 0}, "lora_r"),  # out of range
        ({"model": "m", "output": "o", "lora_dropout": 1.5}, "lora_dropout"),
        ({"model": "m", "output": "o", "method": "prefix"}, "method"),
        ({"model": "m", "output": "o", "preset": "r4-a8"}, "preset"),
        ({"model": "m", "output": "o", "packing": "maybe"}, "packing"),
        (
            {"model": "m", "output": "o", "target_modules": ["all-linear", "q_proj"]},
            "target_modules",
        ),
        ({"output": "o"}, "model"),  # required
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, data: dict, key: str) -> None:
    cfg_file = write_yaml(tmp_path / "bad.yaml", data)
    with pytest.raises(config.ConfigError, match=f"'{key}'"):
        config.load(cfg_file)


def test_cli_bad_config_is_an_error_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_file = write_yaml(
        tmp_path / "bad.yaml", {"model": "m", "output": str(tmp_path / "o"), "learning_rat": 1e-4}
    )
    assert main(["--config", str(cfg_file)]) == 2
    assert "'learning_rat'" in capsys.readouterr().err
    assert main(["--model", "m", "--output", str(tmp_path / "o"), "--lora-alpha", "x"]) == 2
    assert "'lora_alpha'" in capsys.readouterr().err
    assert main(["sweep", "--config", str(cfg_file), "--presets", "r8-a32"]) == 2
    assert main(["sweep", "--model", "m", "--output", "o", "--presets", "r8-a32,r9-a9"]) == 2
    assert "r9-a9" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_every_field_is_a_flag() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    config.add_flags(parser)
    flags = {a.dest for a in parser._actions}
    assert set(config.FIELDS) <= flags
    ns = parser.parse_args(["--no-packing", "--target-modules", "all-linear", "--heldout", "0.1"])
    assert config.overrides_from(ns) == {
        "packing": False,
        "target_modules": "all-linear",
        "heldout": "0.1",
    }


def test_config_paths_expand_variables_and_unset_ones_are_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGADAPT_TEST_MODEL", "/models/base")
    cfg_file = write_yaml(tmp_path / "c.yaml", {"model": "${LANGADAPT_TEST_MODEL}", "output": "o"})
    assert config.load(cfg_file).model == "/models/base"
    monkeypatch.delenv("LANGADAPT_TEST_MODEL")
    with pytest.raises(config.ConfigError, match="'model'"):
        config.load(cfg_file)


def test_example_configs_load(monkeypatch: pytest.MonkeyPatch) -> None:
    repo = Path(__file__).resolve().parent.parent
    cfg = config.load(repo / "configs" / "llama3-zh-qlora.yaml")
    assert (cfg.method, cfg.preset, cfg.chat_template, cfg.data) == (
        "qlora",
        "r16-a48",
        "llama3",
        "zh-mix",
    )
    assert (cfg.lora_r, cfg.lora_alpha, cfg.learning_rate) == (16, 48, 1.6e-5)
    monkeypatch.setenv("SMOLLM2_DIR", "/m")
    monkeypatch.setenv("DATA_DIR", "data")
    demo = config.load(repo / "configs" / "smollm2-zh-demo.yaml")
    assert demo.model == "/m" and demo.data == "data/sft/alpaca_zh_demo.json"


def test_output_with_a_run_in_it_needs_resume(tmp_path: Path) -> None:
    from langadapt_train.trainer import DONE, TrainError, train

    out = tmp_path / "run"
    (out / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    with pytest.raises(TrainError, match="--resume"):
        train(config.build(None, {"model": "m", "output": str(out)}))
    (out / DONE).write_text("{}")
    with pytest.raises(TrainError, match="finished run"):
        train(config.build(None, {"model": "m", "output": str(out), "resume": True}))
