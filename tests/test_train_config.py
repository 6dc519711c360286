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
    # As in a study config: the file, the key, the variable, and what to do.
    with pytest.raises(config.ConfigError) as err:
        config.load(cfg_file)
    assert str(err.value).startswith(
        f"{cfg_file}: model: ${{LANGADAPT_TEST_MODEL}} is not set in the environment; "
        "set it or write ${LANGADAPT_TEST_MODEL:-default}"
    )
    # The same for a key that is not a path.
    bad = write_yaml(
        tmp_path / "sp.yaml", {"model": "m", "output": "o", "system_prompt": "${LANGADAPT_NO_VAR}"}
    )
    with pytest.raises(
        config.ConfigError, match=r"sp\.yaml: system_prompt: \$\{LANGADAPT_NO_VAR\}"
    ):
        config.load(bad)


def test_config_variables_with_a_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LANGADAPT_T_RANK", raising=False)
    monkeypatch.delenv("LANGADAPT_T_PROMPT", raising=False)
    monkeypatch.delenv("LANGADAPT_T_PACKING", raising=False)
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(
        "model: m\n"
        "output: /runs/x\n"
        "lora_r: ${LANGADAPT_T_RANK:-8}\n"
        "packing: ${LANGADAPT_T_PACKING:-true}\n"
        'system_prompt: "${LANGADAPT_T_PROMPT:-Sen yardımsever bir asistansın.}"\n',
        "utf-8",
    )
    cfg = config.load(cfg_file)
    assert (cfg.lora_r, cfg.packing) == (8, True)
    assert cfg.system_prompt == "Sen yardımsever bir asistansın."
    monkeypatch.setenv("LANGADAPT_T_RANK", "32")
    monkeypatch.setenv("LANGADAPT_T_PROMPT", "Be brief.")
    cfg = config.load(cfg_file)
    assert (cfg.lora_r, cfg.system_prompt) == (32, "Be brief.")
    # The resolved config is saved as plain YAML and reloads to the same object.
    out = tmp_path / "saved"
    out.mkdir()
    assert config.load(cfg.save(out)) == cfg


def test_config_paths_are_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "configs"
    (folder / "m").mkdir(parents=True)
    (folder / "local-model").mkdir()
    (folder / "chat.jinja").write_text("{{ messages }}", "utf-8")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working directory plays no part
    monkeypatch.setenv("LANGADAPT_T_DIR", "shared")
    cfg_file = write_yaml(
        folder / "c.yaml",
        {
            "model": "./m",
            "output": "runs/x",
            "data": "zh-mix",
            "tokenizer": "../tok",
            "chat_template": "chat.jinja",
            "cmmlu_dir": "${LANGADAPT_T_DIR}/cmmlu",
            "mt_bench_dir": "~/mt_bench",
        },
    )
    cfg = config.load(cfg_file)
    assert cfg.model == str(tmp_path.resolve() / "configs" / "m")
    assert cfg.output == str(tmp_path.resolve() / "configs" / "runs" / "x")
    assert cfg.data == "zh-mix"  # a shipped mix's name
    assert cfg.tokenizer == str(tmp_path.resolve() / "tok")  # written as a path
    assert cfg.chat_template == str(tmp_path.resolve() / "configs" / "chat.jinja")  # exists
    # A variable's value is taken as given: relative to the working directory.
    assert cfg.cmmlu_dir == str(tmp_path.resolve() / "cwd" / "shared" / "cmmlu")
    assert cfg.mt_bench_dir == str(Path.home() / "mt_bench")
    names = write_yaml(
        folder / "names.yaml",
        {
            "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
            "output": "o",
            "data": "aya-tur",
            "chat_template": "llama3",
        },
    )
    cfg = config.load(names)
    assert (cfg.model, cfg.data, cfg.chat_template) == (
        "HuggingFaceTB/SmolLM2-135M-Instruct",  # a Hub id
        "aya-tur",  # a named source
        "llama3",  # a shipped template
    )
    # A bare name that is a folder next to the config file is that folder.
    cfg = config.load(write_yaml(folder / "local.yaml", {"model": "local-model", "output": "o"}))
    assert cfg.model == str(tmp_path.resolve() / "configs" / "local-model")


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
    # The shipped configs write ../ paths: relative to configs/, i.e. in the repository.
    assert cfg.output == str(repo / "adapters" / "llama3-zh-r16a48")
    assert demo.output == str(repo / "out" / "smollm2-zh-demo")
    assert demo.cmmlu_dir == str(Path.cwd().resolve() / "data" / "cmmlu")  # $DATA_DIR: the cwd


def test_output_with_a_run_in_it_needs_resume(tmp_path: Path) -> None:
    from langadapt_train.trainer import DONE, TrainError, train

    out = tmp_path / "run"
    (out / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    with pytest.raises(TrainError, match="--resume"):
        train(config.build(None, {"model": "m", "output": str(out)}))
    (out / DONE).write_text("{}")
    with pytest.raises(TrainError, match="finished run"):
        train(config.build(None, {"model": "m", "output": str(out), "resume": True}))


# --- issue 10 item 8: types, unknown keys and secrets in config files -----------------------


def test_yaml_values_are_type_checked(tmp_path: Path) -> None:
    cfg = config.load(
        write_yaml(
            tmp_path / "c.yaml",
            {
                "model": "m",
                "output": "o",
                "packing": "false",  # a string, as ${VAR} expansion gives: not bool("false")
                "gradient_checkpointing": "yes",
                "lora_r": "8",
                "learning_rate": "1e-4",  # YAML 1.1 reads 1e-4 as a string
                "target_modules": "q_proj, v_proj",
                "heldout": "none",
            },
        )
    )
    assert cfg.packing is False and cfg.gradient_checkpointing is True
    assert cfg.lora_r == 8 and cfg.learning_rate == 1e-4
    assert cfg.target_modules == ["q_proj", "v_proj"] and cfg.heldout is None
    for key, value in [
        ("model", 5),  # a string field given a number
        ("output", ["a"]),
        ("lora_r", 8.5),
        ("lora_r", [8]),
        ("learning_rate", float("nan")),
        ("num_train_epochs", float("inf")),
        ("lora_dropout", {"p": 0.1}),
        ("target_modules", ["q_proj", 3]),
        ("packing", 2),
    ]:
        bad = write_yaml(tmp_path / "bad.yaml", {"model": "m", "output": "o", key: value})
        with pytest.raises(config.ConfigError, match=rf"bad\.yaml: config key '{key}'"):
            config.load(bad)


def test_unknown_key_names_the_file_and_the_known_keys(tmp_path: Path) -> None:
    bad = write_yaml(tmp_path / "bad.yaml", {"model": "m", "output": "o", "lora_rank": 8})
    with pytest.raises(config.ConfigError) as err:
        config.load(bad)
    message = str(err.value)
    assert str(bad) in message and "'lora_rank'" in message
    assert "known keys:" in message and all(k in message for k in config.FIELDS)


@pytest.mark.parametrize(
    "key,value",
    [
        ("hub_token", "hf_abcdefghijklmnopqrstuvwxyz0123"),
        ("HF_TOKEN", "x"),
        ("api_key", "anything"),
        ("system_prompt", "key hf_abcdefghijklmnopqrstuvwxyz0123"),
        ("model", "https://user:s3cretpass@example.com/models/base"),
    ],
)
def test_secrets_in_a_config_file_are_refused_without_echoing_them(
    tmp_path: Path, key: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_yaml(
        tmp_path / "bad.yaml", {"model": "m", "output": str(tmp_path / "o"), key: value}
    )
    with pytest.raises(config.ConfigError, match="secrets do not belong") as err:
        config.load(bad)
    assert str(bad) in str(err.value) and f"'{key}'" in str(err.value)
    assert value not in str(err.value)
    assert main(["--config", str(bad)]) == 2
    assert value not in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# --- issue 10 item 9: presets, precedence and the output folder ----------------------------


def test_explicit_values_beat_a_preset_and_every_replacement_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg_file = write_yaml(
        tmp_path / "demo.yaml",
        {"model": "m", "output": "o", "preset": "r16-a48", "learning_rate": 2e-4},
    )
    with caplog.at_level("INFO", logger="langadapt_train"):
        cfg = config.load(cfg_file, {"lora_alpha": "64"}, preset="r8-a32")
    assert (cfg.preset, cfg.lora_r, cfg.lora_alpha, cfg.learning_rate) == ("r8-a32", 8, 64, 2e-4)
    text = caplog.text
    assert "sweep preset r8-a32 replaces preset r16-a48" in text
    assert f"learning_rate=0.0002 (from {cfg_file}) replaces preset r8-a32's 1.6e-05" in text
    assert "lora_alpha=64 (from --lora-alpha) replaces preset r8-a32's 32" in text
    assert "preset r8-a32 sets lora_r=8 (default 16)" in text


def test_sweep_refuses_an_explicit_rank_that_contradicts_a_preset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_file = write_yaml(
        tmp_path / "c.yaml", {"model": "m", "output": str(tmp_path / "grid"), "lora_r": 16}
    )
    assert main(["sweep", "--config", str(cfg_file), "--presets", "r16-a32,r8-a32"]) == 2
    err = capsys.readouterr().err
    assert "'lora_r'" in err and "r8-a32" in err and str(cfg_file) in err
    assert not (tmp_path / "grid").exists()


def _fake_unfinished_run(out: Path, cfg: config.TrainConfig) -> None:
    """On-disk state of a run stopped after checkpoint 1 (what check_output reads)."""
    (out / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    (out / "checkpoints" / "checkpoint-1" / "trainer_state.json").write_text("{}")
    cfg.save(out)


def test_resume_refuses_a_changed_config_and_keeps_the_saved_one(tmp_path: Path) -> None:
    from langadapt_train.trainer import TrainError, train

    out = tmp_path / "run"
    first = config.build(None, {"model": "m", "output": str(out), "lora_dropout": 0.1})
    _fake_unfinished_run(out, first)
    saved = (out / config.CONFIG_NAME).read_text()
    changed = config.build(
        None, {"model": "m", "output": str(out), "lora_dropout": 0.2, "resume": True}
    )
    for _ in range(2):  # refused every time, not only the first
        with pytest.raises(TrainError, match=r"lora_dropout: 0\.1 -> 0\.2"):
            train(changed)
        assert (out / config.CONFIG_NAME).read_text() == saved


def test_resume_without_a_checkpoint_never_overwrites_an_adapter(tmp_path: Path) -> None:
    from langadapt_train.trainer import TrainError, train

    out = tmp_path / "adapter"
    out.mkdir()
    (out / "adapter_model.safetensors").write_bytes(b"weights")
    (out / "adapter_config.json").write_text("{}")
    for resume in (True, False):
        cfg = config.build(None, {"model": "m", "output": str(out), "resume": resume})
        with pytest.raises(TrainError, match=r"adapter_config\.json, adapter_model\.safetensors"):
            train(cfg)
    assert (out / "adapter_model.safetensors").read_bytes() == b"weights"
    assert sorted(p.name for p in out.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]


def test_sweep_does_not_resume_a_folder_without_checkpoints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = tmp_path / "grid"
    (grid / "r8-a32").mkdir(parents=True)
    (grid / "r8-a32" / "notes.txt").write_text("mine")
    cfg_file = write_yaml(tmp_path / "c.yaml", {"model": "m", "output": str(grid)})
    assert main(["sweep", "--config", str(cfg_file), "--presets", "r8-a32"]) == 2
    captured = capsys.readouterr()
    assert "r8-a32: training" in captured.out and "notes.txt" in captured.err
    assert [p.name for p in (grid / "r8-a32").iterdir()] == ["notes.txt"]


def test_a_refused_run_writes_nothing(
    tmp_path: Path, smollm2_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "rows.csv"
    bad.write_text('instruction,output\nsoru,cevap\nsoru 2,"cevap 2\nsoru 3,cevap 3\n', "utf-8")
    out = tmp_path / "out"
    args = ["--model", str(smollm2_dir), "--output", str(out), "--no-decontaminate"]
    assert main([*args, "--data", str(bad)]) == 2
    assert "rows.csv, line 3" in capsys.readouterr().err
    assert not out.exists()
    # A trainer setting transformers refuses is caught before anything is written, too.
    good = tmp_path / "good.jsonl"
    good.write_text('{"instruction": "soru", "output": "cevap"}\n', "utf-8")
    assert main([*args, "--data", str(good), "--optim", "adamw_nonesuch"]) == 2
    assert "'optim'" in capsys.readouterr().err
    assert not out.exists()


def test_resume_refuses_changed_data_every_time(tmp_path: Path, smollm2_dir: Path) -> None:
    """The data check reads the run's manifest before anything is rewritten."""
    from langadapt_train.trainer import (
        MANIFEST,
        TrainError,
        load_tokenizer,
        prepare_data,
        train,
        write_records,
    )

    data = tmp_path / "rows.jsonl"
    data.write_text(
        "".join(f'{{"instruction": "soru {i}", "output": "cevap {i}"}}\n' for i in range(4)),
        "utf-8",
    )
    out = tmp_path / "run"
    cfg = config.build(
        None,
        {"model": str(smollm2_dir), "output": str(out), "data": str(data), "decontaminate": False},
    )
    tokenizer, chosen = load_tokenizer(cfg)
    _, manifest, records = prepare_data(cfg, tokenizer, chosen)
    _fake_unfinished_run(out, cfg)
    write_records(out, manifest, records)
    before = (out / MANIFEST).read_text()
    data.write_text(data.read_text().replace("cevap 2", "cevap iki"), "utf-8")
    cfg.resume = True
    for _ in range(2):
        with pytest.raises(TrainError, match=r"training data differ.*sources\[0\]\.sha256"):
            train(cfg)
        assert (out / MANIFEST).read_text() == before


# --- issue 10 item 11: declared minimum versions ------------------------------------------


def _declared_minimums() -> dict[str, str]:
    import tomllib
    from packaging.requirements import Requirement

    pyproject = tomllib.loads(
        (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    )
    out = {}
    for line in pyproject["project"]["dependencies"]:
        req = Requirement(line)
        lows = [s.version for s in req.specifier if s.operator == ">="]
        if lows:
            out[req.name] = lows[0]
    return out


def test_declared_minimums_cover_the_apis_the_trainer_uses() -> None:
    """The lowest versions with each API the trainer relies on; pyproject may not go below."""
    from importlib.metadata import version

    from packaging.version import Version

    needed = {
        "transformers": "5.0",  # warmup_steps < 1 read as a ratio; from_pretrained(dtype=)
        "peft": "0.18",  # the first PEFT transformers 5 loads
        "bitsandbytes": "0.46.1",  # transformers' floor for 4-bit loading
        "trl": "1.0",  # SFTConfig.packing_strategy="bfd" with transformers 5
    }
    declared = _declared_minimums()
    for name, low in needed.items():
        assert Version(declared[name]) >= Version(low), (name, declared[name], low)
        assert Version(version(name)) >= Version(declared[name]), name


def test_installed_versions_have_the_features_the_trainer_relies_on(tmp_path: Path) -> None:
    from transformers import TrainingArguments
    from trl import SFTConfig

    from langadapt_train.trainer import sft_config

    # A warm-up ratio passed as warmup_steps (4.x would floor it to 0 steps).
    args = TrainingArguments(output_dir=str(tmp_path), warmup_steps=0.03)
    assert args.get_warmup_steps(100) == 3
    cfg = config.build(None, {"model": "m", "output": str(tmp_path), "packing": True})
    sft = sft_config(cfg, tmp_path)
    assert isinstance(sft, SFTConfig) and sft.packing_strategy == "bfd"
    assert sft.get_warmup_steps(1000) == 30  # warmup_ratio 0.03 of the default config


def test_a_mix_file_next_to_the_config_follows_the_same_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langadapt_train.data import mix

    monkeypatch.delenv("LANGADAPT_T_ROWS", raising=False)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mix.yaml").write_text(
        "name: mine\nsources:\n  - path: ${LANGADAPT_T_ROWS:-rows.jsonl}\n", "utf-8"
    )
    cfg = config.load(
        write_yaml(tmp_path / "c.yaml", {"model": "m", "output": "o", "data": "data/mix.yaml"})
    )
    assert cfg.data == str(tmp_path.resolve() / "data" / "mix.yaml")
    spec = mix.resolve(cfg.data)
    assert spec.sources[0].path == tmp_path.resolve() / "data" / "rows.jsonl"  # next to the mix
    (tmp_path / "data" / "mix.yaml").write_text(
        "name: mine\nsources:\n  - path: ${LANGADAPT_T_ROWS}\n", "utf-8"
    )
    with pytest.raises(
        mix.MixError, match=r"mix\.yaml: sources\[0\]\.path: \$\{LANGADAPT_T_ROWS\}"
    ):
        mix.resolve(cfg.data)
