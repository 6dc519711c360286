"""langadapt-train: the config object, presets, and the CLI's promised errors (no model)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hostile import billion_laughs, run_module

from langadapt_train import config
from langadapt_train.cli import main
from langadapt_train.config import ConfigError
from langadapt_train.outputs import CONFIG_NAME

MO = {"model_name_or_path": "m", "output_dir": "o"}


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    return path


def test_yaml_then_flags_then_preset_precedence(tmp_path: Path) -> None:
    cfg_file = write_yaml(
        tmp_path / "c.yaml",
        {
            "model_name_or_path": "m",
            "output_dir": "./out",
            "preset": "r8-a32",
            "lora_alpha": 64,
            "lora_target_modules": ["q_proj", "v_proj"],
            "packing": True,
        },
    )
    cfg = config.load(cfg_file, {"max_length": "256", "seed": 7})
    assert cfg.model_args.lora_r == 8  # from the preset
    assert cfg.model_args.lora_alpha == 64  # YAML beats the preset
    assert cfg.sft["learning_rate"] == pytest.approx(1.6e-5)
    assert cfg.sft["max_length"] == 256 and cfg.sft["seed"] == 7  # flags, parsed from strings
    assert cfg.model_args.lora_target_modules == ["q_proj", "v_proj"] and cfg.sft["packing"]
    assert cfg.output == str((tmp_path / "out").resolve())  # relative to the config file
    # A flag beats the YAML.
    assert config.load(cfg_file, {"lora_alpha": 16}).model_args.lora_alpha == 16


def test_defaults_follow_the_study() -> None:
    cfg = config.build(None, {"model_name_or_path": "m", "output_dir": "o"})
    assert cfg.script.method == "qlora"
    # QLoRA as the study ran it: 4-bit NF4 with double quantization, LoRA on q/k/v.
    margs = cfg.model_args
    assert (margs.use_peft, margs.load_in_4bit, margs.use_bnb_nested_quant) == (True, True, True)
    assert margs.bnb_4bit_quant_type == "nf4"
    assert margs.lora_target_modules == ["q_proj", "k_proj", "v_proj"]
    assert cfg.sft["learning_rate"] == pytest.approx(1.6e-5)
    # The study's largest preset (r16-a48) with PEFT's customary dropout.
    assert (margs.lora_r, margs.lora_alpha, margs.lora_dropout) == (16, 48, pytest.approx(0.05))
    assert cfg.sft["assistant_only_loss"] is True


@pytest.mark.parametrize(
    "preset,r,alpha", [("r8-a32", 8, 32), ("r16-a32", 16, 32), ("r16-a48", 16, 48)]
)
def test_presets(preset: str, r: int, alpha: int) -> None:
    cfg = config.build(None, {"model_name_or_path": "m", "output_dir": "o", "preset": preset})
    got = (cfg.model_args.lora_r, cfg.model_args.lora_alpha, cfg.sft["learning_rate"])
    assert got == (r, alpha, pytest.approx(1.6e-5))


def test_saved_config_reloads_to_the_same_object(tmp_path: Path) -> None:
    cfg = config.build(
        None,
        {
            "model_name_or_path": "m",
            "output_dir": str(tmp_path),
            "preset": "r16-a32",
            "lora_target_modules": "all-linear",
            "report_to": "none",
            "padding_free": "true",
        },
    )
    saved = cfg.save(tmp_path)
    again = config.load(saved)
    assert again == cfg and again.sft == cfg.sft and again.model_args == cfg.model_args
    # report_to "none" is transformers' word for no logger, not an unset key.
    from langadapt_train.trainer import sft_config

    assert again.sft["report_to"] == "none" and sft_config(again, tmp_path).report_to == []


@pytest.mark.parametrize(
    "data,key",
    [
        ({**MO, "lora_rank": 8}, "lora_rank"),  # unknown key
        ({**MO, "lora_r": "eight"}, "lora_r"),  # wrong type
        ({**MO, "lora_r": 0}, "lora_r"),  # out of range
        ({**MO, "lora_dropout": 1.5}, "lora_dropout"),
        ({**MO, "method": "prefix"}, "method"),
        ({**MO, "preset": "r4-a8"}, "preset"),
        ({**MO, "packing": "maybe"}, "packing"),
        ({**MO, "lora_target_modules": ["all-linear", "q_proj"]}, "lora_target_modules"),
        (
            {"model": "m", "output": "o", "target_modules": ["all-linear", "x"]},
            "lora_target_modules",
        ),
        ({"output_dir": "o"}, "model_name_or_path"),  # required
        ({"output": "o"}, "model_name_or_path"),
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
        tmp_path / "bad.yaml",
        {"model_name_or_path": "m", "output_dir": str(tmp_path / "o"), "learning_rat": 1e-4},
    )
    assert main(["--config", str(cfg_file)]) == 2
    err = capsys.readouterr().err
    assert "'learning_rat'" in err and "did you mean 'learning_rate'" in err
    # A bad flag value: argparse's own error (status 2) names the flag.
    with pytest.raises(SystemExit) as exit_:
        main(["--model", "m", "--output", str(tmp_path / "o"), "--lora-alpha", "x"])
    assert exit_.value.code == 2 and "--lora_alpha" in capsys.readouterr().err
    assert main(["sweep", "--config", str(cfg_file), "--presets", "r8-a32"]) == 2
    assert main(["sweep", "--model", "m", "--output", "o", "--presets", "r8-a32,r9-a9"]) == 2
    assert "r9-a9" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_every_trl_and_langadapt_field_is_a_flag_listed_by_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import dataclasses

    from trl import ModelConfig, SFTConfig

    from langadapt_train.arguments import LangadaptArguments
    from langadapt_train.parser import build_parser, given_flags

    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for cls in (SFTConfig, ModelConfig, LangadaptArguments):
        for f in dataclasses.fields(cls):
            if f.init:
                assert f"--{f.name}" in text, f.name
    # langadapt's defaults, not TRL's, are the ones shown.
    assert "LoRA alpha. (default: 48)" in " ".join(text.split())
    parser = build_parser("langadapt-train", "", False)
    flags, _ = given_flags(
        parser,
        [
            "--no-packing",
            "--target-modules",
            "all-linear",
            "--heldout",
            "0.1",
            "--use-liger-kernel",
        ],
    )
    assert flags == {
        "packing": False,
        "lora_target_modules": ["all-linear"],
        "heldout": 0.1,
        "use_liger_kernel": True,
    }


def test_any_trl_key_reaches_trl(tmp_path: Path) -> None:
    """Keys langadapt has no word for go to SFTConfig / ModelConfig as TRL reads them."""
    from langadapt_train.trainer import sft_config

    cfg = config.load(
        write_yaml(
            tmp_path / "c.yaml",
            {
                **MO,
                "neftune_noise_alpha": 5.0,
                "lr_scheduler_kwargs": {"min_lr": 1e-6},
                "use_rslora": True,
                "lora_modules_to_save": ["lm_head"],
            },
        )
    )
    sft = sft_config(cfg, tmp_path)
    assert sft.neftune_noise_alpha == 5.0
    assert sft.lr_scheduler_kwargs == {"min_lr": 1e-6}
    assert cfg.model_args.use_rslora and cfg.model_args.lora_modules_to_save == ["lm_head"]
    # TRL's own helper builds the adapter from them.
    from trl import get_peft_config

    peft = get_peft_config(cfg.model_args)
    assert peft.use_rslora and set(peft.target_modules) == {"q_proj", "k_proj", "v_proj"}


def _machine(monkeypatch: pytest.MonkeyPatch, gpu: bool, liger: bool = False) -> None:
    """What the config sees of this machine: an NVIDIA GPU or none, liger-kernel or not."""
    monkeypatch.setattr(config, "_has_cuda", lambda: gpu)
    monkeypatch.setattr(config, "_has_gpu", lambda: gpu)
    monkeypatch.setattr(config, "_has_package", lambda name: liger and name == "liger_kernel")


@pytest.mark.parametrize("key", ["use_liger_kernel", "activation_offloading"])
def test_a_setting_that_needs_a_gpu_is_refused_on_a_machine_without_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    _machine(monkeypatch, gpu=False, liger=True)
    out = tmp_path / "o"
    cfg_file = write_yaml(tmp_path / "gpu.yaml", {**MO, "output_dir": str(out), key: True})
    assert main(["--config", str(cfg_file)]) == 2
    err = capsys.readouterr().err
    assert f"{cfg_file}: config key {key!r}" in err and f"set {key}: false" in err
    flag = "--" + key.replace("_", "-")
    assert main(["--model", "m", "--output", str(out), flag]) == 2
    assert f"{flag}: config key {key!r}" in capsys.readouterr().err
    assert not out.exists()
    # Off, or left to langadapt: no error, and off on this machine.
    assert not config.build(None, {**MO, key: False}).sft[key]
    assert not config.build(None, MO).sft[key]


def test_liger_is_on_by_default_on_a_gpu_with_the_package_and_explicit_without_it_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _machine(monkeypatch, gpu=True, liger=True)
    assert config.build(None, MO).sft["use_liger_kernel"]
    assert not config.build(None, {**MO, "use_liger_kernel": False}).sft["use_liger_kernel"]
    on = config.build(None, {**MO, "activation_offloading": True})
    assert on.sft["activation_offloading"]
    _machine(monkeypatch, gpu=True, liger=False)
    assert not config.build(None, MO).sft["use_liger_kernel"]  # logged, not an error
    with pytest.raises(
        ConfigError, match=r"--use-liger-kernel: .*pip install 'langadapt\[liger\]'"
    ):
        config.build(None, {**MO, "use_liger_kernel": True}, "--use-liger-kernel")


@pytest.mark.parametrize(
    "given,padding_free,trl_max_length",
    [
        ({}, False, 1024),
        ({"attn_implementation": "sdpa"}, False, 1024),
        ({"attn_implementation": "flash_attention_2"}, True, None),
        ({"attn_implementation": "kernels-community/flash-attn3"}, True, None),
        ({"attn_implementation": "flash_attention_2", "padding_free": False}, False, 1024),
        ({"padding_free": True}, True, None),
        ({"padding_free": True, "packing": True}, True, 1024),  # packing's block length
    ],
)
def test_padding_free_follows_the_attention_kernel_unless_given(
    tmp_path: Path, given: dict, padding_free: bool, trl_max_length: int | None
) -> None:
    """On with a flash attention kernel (no padding computed); TRL's max_length only where it
    does something TRL allows, since langadapt truncates the rows itself."""
    from langadapt_train.trainer import sft_config

    cfg = config.build(None, {**MO, **given})
    assert cfg.sft["padding_free"] is padding_free and cfg.sft["max_length"] == 1024
    sft = sft_config(cfg, tmp_path)
    assert (sft.padding_free, sft.max_length) == (padding_free, trl_max_length)


def test_old_key_names_still_work_and_name_the_new_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = write_yaml(
        tmp_path / "old.yaml",
        {"model": "m", "output": "o", "target_modules": ["q_proj"], "warmup_ratio": 0.1},
    )
    new = write_yaml(
        tmp_path / "new.yaml",
        {**MO, "lora_target_modules": ["q_proj"], "warmup_steps": 0.1},
    )
    with caplog.at_level("WARNING", logger="langadapt_train"):
        assert config.load(old) == config.load(new)
    for before, after in [
        ("model", "model_name_or_path"),
        ("output", "output_dir"),
        ("target_modules", "lora_target_modules"),
        ("warmup_ratio", "warmup_steps"),
    ]:
        assert f"config key '{before}' is now '{after}'" in caplog.text
    # A one-module list stays a list (TRL's ModelConfig would make it a regular expression).
    assert config.load(new).model_args.lora_target_modules == ["q_proj"]
    # The older flags are aliases of TRL's, logged the same way.
    from langadapt_train.parser import build_parser, given_flags

    caplog.clear()
    with caplog.at_level("WARNING", logger="langadapt_train"):
        flags, _ = given_flags(build_parser("t", "", False), ["--model", "m", "--output=o"])
    assert flags == {"model_name_or_path": "m", "output_dir": "o"}
    assert "flag --model is now --model_name_or_path" in caplog.text
    assert "flag --output is now --output_dir" in caplog.text
    both = write_yaml(tmp_path / "both.yaml", {**MO, "model": "m2"})
    with pytest.raises(ConfigError, match="'model' and 'model_name_or_path'"):
        config.load(both)
    for key, why in [("resume_from_checkpoint", "resume: true"), ("hub_token", "HF_TOKEN")]:
        bad = write_yaml(tmp_path / "bad.yaml", {**MO, key: "x"})
        with pytest.raises(ConfigError, match=f"'{key}'.*{why}"):
            config.load(bad)


def test_a_run_saved_by_the_first_releases_resumes_unchanged(tmp_path: Path) -> None:
    """A run's langadapt_train.yaml as the first releases wrote it (every key at its default,
    old names) holds the same settings as the same run configured today, QLoRA's
    preparation included: those releases kept the weights not quantized in fp32."""
    (tmp_path / CONFIG_NAME).write_text(FIRST_RELEASE_SAVED, "utf-8")
    before = config.saved(tmp_path)
    same = {**MO, "preset": "r16-a48", "max_steps": 20, "upcast_non_quantized": True}
    assert config.changes(before, config.build(None, same)) == []
    cfg = config.build(None, {**same, "seed": 7})
    assert config.changes(before, cfg) == ["seed: 42 -> 7"]
    cfg = config.build(None, {**MO, "preset": "r16-a48", "max_steps": 20})  # today's default
    assert config.changes(before, cfg) == ["upcast_non_quantized: True -> False"]
    # A LoRA run has no quantized weights: the key is not compared.
    lora = FIRST_RELEASE_SAVED.replace("method: qlora", "method: lora")
    assert lora != FIRST_RELEASE_SAVED
    (tmp_path / CONFIG_NAME).write_text(lora, "utf-8")
    cfg = config.build(None, {**MO, "preset": "r16-a48", "max_steps": 20, "method": "lora"})
    assert config.changes(config.saved(tmp_path), cfg) == []


# langadapt_train.yaml of a run started with the first releases' defaults.
FIRST_RELEASE_SAVED = """\
model: m
output: /runs/old
data: zh-mix
tokenizer: null
chat_template: null
method: qlora
preset: r16-a48
lora_r: 16
lora_alpha: 48
lora_dropout: 0.05
target_modules: [q_proj, k_proj, v_proj]
learning_rate: 1.6e-05
num_train_epochs: 1.0
max_steps: 20
per_device_train_batch_size: 4
gradient_accumulation_steps: 4
warmup_ratio: 0.03
lr_scheduler_type: cosine
weight_decay: 0.0
max_grad_norm: 1.0
optim: adamw_torch
precision: auto
bnb_4bit_quant_storage: auto
max_length: 1024
packing: false
assistant_only_loss: true
gradient_checkpointing: true
seed: 42
system_prompt: null
max_rows: null
heldout: null
decontaminate: true
decontam_ngram: 13
cmmlu_dir: null
mt_bench_dir: null
turkishmmlu_dir: null
save_steps: 200
save_total_limit: 3
logging_steps: 10
report_to: [none]
trust_remote_code: false
"""


@pytest.mark.parametrize(
    "given,method,flags",
    [
        ({"use_peft": False}, "full", (False, False)),
        ({"load_in_4bit": False}, "lora", (True, False)),
        ({"use_peft": True}, "lora", (True, False)),
        ({"use_peft": True, "load_in_4bit": True}, "qlora", (True, True)),
        ({"method": "lora"}, "lora", (True, False)),
        ({"method": "full"}, "full", (False, False)),
    ],
)
def test_method_follows_trls_own_keys(given: dict, method: str, flags: tuple) -> None:
    cfg = config.build(None, {**MO, **given})
    assert cfg.script.method == method
    assert (cfg.model_args.use_peft, cfg.model_args.load_in_4bit) == flags


def test_contradicting_keys_are_errors_naming_both() -> None:
    for given, named in [
        ({"method": "qlora", "load_in_4bit": False}, ["'load_in_4bit' = False", "method qlora"]),
        ({"method": "full", "use_peft": True}, ["'use_peft' = True", "method full"]),
        ({"precision": "fp32", "bf16": True}, ["'bf16'", "precision fp32"]),
        # Not a contradiction but a refusal: the key, and the methods to use instead.
        ({"load_in_8bit": True}, ["'load_in_8bit'", "method: qlora", "lora"]),
    ]:
        with pytest.raises(ConfigError) as err:
            config.build(None, {**MO, **given})
        message = str(err.value)
        assert all(part in message for part in named), (given, message)


def test_precision_sets_trls_bf16_fp16_and_dtype() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the CPU default")
    cpu = config.build(None, MO)
    assert (cpu.sft["bf16"], cpu.sft["fp16"], cpu.model_args.dtype) == (False, False, "float32")
    bf16 = config.build(None, {**MO, "precision": "bf16"})
    assert (bf16.sft["bf16"], bf16.model_args.dtype) == (True, "bfloat16")
    # TRL's own key works too, and so does an explicit model dtype.
    given = config.build(None, {**MO, "bf16": True, "dtype": "float32"})
    assert (given.sft["bf16"], given.model_args.dtype) == (True, "float32")


def test_qlora_settings_come_from_trls_helpers() -> None:
    """QLoRA's quantization is TRL's get_quantization_config over the run's ModelConfig:
    NF4, double quantization, compute in the model dtype, bitsandbytes' uint8 storage."""
    import torch

    from langadapt_train.trainer import quantization_config

    bnb = quantization_config(config.build(None, MO), False)
    assert bnb.load_in_4bit and bnb.bnb_4bit_quant_type == "nf4"
    assert bnb.bnb_4bit_use_double_quant
    assert (bnb.bnb_4bit_compute_dtype, bnb.bnb_4bit_quant_storage) == (torch.float32, torch.uint8)
    plain = quantization_config(config.build(None, {**MO, "use_bnb_nested_quant": False}), False)
    assert not plain.bnb_4bit_use_double_quant


def test_config_paths_expand_variables_and_unset_ones_are_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGADAPT_TEST_MODEL", "/models/base")
    cfg_file = write_yaml(
        tmp_path / "c.yaml", {"model_name_or_path": "${LANGADAPT_TEST_MODEL}", "output_dir": "o"}
    )
    assert config.load(cfg_file).model_args.model_name_or_path == "/models/base"
    monkeypatch.delenv("LANGADAPT_TEST_MODEL")
    # As in a study config: the file, the key, the variable, and what to do.
    with pytest.raises(config.ConfigError) as err:
        config.load(cfg_file)
    assert str(err.value).startswith(
        f"{cfg_file}: model_name_or_path: ${{LANGADAPT_TEST_MODEL}} is not set in the environment; "
        "set it or write ${LANGADAPT_TEST_MODEL:-default}"
    )
    # The same for a key that is not a path.
    bad = write_yaml(tmp_path / "sp.yaml", {**MO, "system_prompt": "${LANGADAPT_NO_VAR}"})
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
        "model_name_or_path: m\n"
        "output_dir: /runs/x\n"
        "lora_r: ${LANGADAPT_T_RANK:-8}\n"
        "packing: ${LANGADAPT_T_PACKING:-true}\n"
        'system_prompt: "${LANGADAPT_T_PROMPT:-Sen yardımsever bir asistansın.}"\n',
        "utf-8",
    )
    cfg = config.load(cfg_file)
    assert (cfg.model_args.lora_r, cfg.sft["packing"]) == (8, True)
    assert cfg.script.system_prompt == "Sen yardımsever bir asistansın."
    monkeypatch.setenv("LANGADAPT_T_RANK", "32")
    monkeypatch.setenv("LANGADAPT_T_PROMPT", "Be brief.")
    cfg = config.load(cfg_file)
    assert (cfg.model_args.lora_r, cfg.script.system_prompt) == (32, "Be brief.")
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
            "model_name_or_path": "./m",
            "output_dir": "runs/x",
            "data": "zh-mix",
            "tokenizer": "../tok",
            "chat_template": "chat.jinja",
            "cmmlu_dir": "${LANGADAPT_T_DIR}/cmmlu",
            "mt_bench_dir": "~/mt_bench",
        },
    )
    cfg = config.load(cfg_file)
    own = cfg.script
    assert cfg.model_args.model_name_or_path == str(tmp_path.resolve() / "configs" / "m")
    assert cfg.output == str(tmp_path.resolve() / "configs" / "runs" / "x")
    assert own.data == "zh-mix"  # a shipped mix's name
    assert own.tokenizer == str(tmp_path.resolve() / "tok")  # written as a path
    assert own.chat_template == str(tmp_path.resolve() / "configs" / "chat.jinja")  # exists
    # A variable's value is taken as given: relative to the working directory.
    assert own.cmmlu_dir == str(tmp_path.resolve() / "cwd" / "shared" / "cmmlu")
    assert own.mt_bench_dir == str(Path.home() / "mt_bench")
    names = write_yaml(
        folder / "names.yaml",
        {
            "model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct",
            "output_dir": "o",
            "data": "aya-tur",
            "chat_template_path": "llama3",  # TRL's name for the key
        },
    )
    cfg = config.load(names)
    assert (cfg.model_args.model_name_or_path, cfg.script.data, cfg.script.chat_template) == (
        "HuggingFaceTB/SmolLM2-135M-Instruct",  # a Hub id
        "aya-tur",  # a named source
        "llama3",  # a shipped template
    )
    # A bare name that is a folder next to the config file is that folder.
    cfg = config.load(write_yaml(folder / "local.yaml", {"model": "local-model", "output": "o"}))
    assert cfg.model_args.model_name_or_path == str(tmp_path.resolve() / "configs" / "local-model")


def test_example_configs_load(monkeypatch: pytest.MonkeyPatch) -> None:
    repo = Path(__file__).resolve().parent.parent
    cfg = config.load(repo / "configs" / "llama3-zh-qlora.yaml")
    own = cfg.script
    assert (own.method, own.preset, own.chat_template, own.data) == (
        "qlora",
        "r16-a48",
        "llama3",
        "zh-mix",
    )
    got = (cfg.model_args.lora_r, cfg.model_args.lora_alpha, cfg.sft["learning_rate"])
    assert got == (16, 48, 1.6e-5)
    monkeypatch.setenv("SMOLLM2_DIR", "/m")
    monkeypatch.setenv("DATA_DIR", "data")
    demo = config.load(repo / "configs" / "smollm2-zh-demo.yaml")
    assert demo.model_args.model_name_or_path == "/m"
    assert demo.script.data == "data/sft/alpaca_zh_demo.json"
    # The shipped configs write ../ paths: relative to configs/, i.e. in the repository.
    assert cfg.output == str(repo / "adapters" / "llama3-zh-r16a48")
    assert demo.output == str(repo / "out" / "smollm2-zh-demo")
    assert demo.script.cmmlu_dir == str(Path.cwd().resolve() / "data" / "cmmlu")  # the cwd


def test_output_with_a_run_in_it_needs_resume(tmp_path: Path) -> None:
    from langadapt_train.trainer import DONE, TrainError, train

    out = tmp_path / "run"
    _fake_unfinished_run(out, config.build(None, {**MO, "output_dir": str(out)}))
    with pytest.raises(TrainError, match="--resume"):
        train(config.build(None, {**MO, "output_dir": str(out)}))
    (out / DONE).write_text("{}")
    with pytest.raises(TrainError, match="finished run"):
        train(config.build(None, {**MO, "output_dir": str(out), "resume": True}))


# --- issue 10 item 8: types, unknown keys and secrets in config files -----------------------


def test_yaml_values_are_type_checked(tmp_path: Path) -> None:
    cfg = config.load(
        write_yaml(
            tmp_path / "c.yaml",
            {
                **MO,
                "packing": "false",  # a string, as ${VAR} expansion gives: not bool("false")
                "gradient_checkpointing": "yes",
                "lora_r": "8",
                "learning_rate": "1e-4",  # YAML 1.1 reads 1e-4 as a string
                "lora_target_modules": "q_proj, v_proj",
                "heldout": "none",
            },
        )
    )
    assert cfg.sft["packing"] is False and cfg.sft["gradient_checkpointing"] is True
    assert cfg.model_args.lora_r == 8 and cfg.sft["learning_rate"] == 1e-4
    assert cfg.model_args.lora_target_modules == ["q_proj", "v_proj"]
    assert cfg.script.heldout is None
    for key, value in [
        ("model_name_or_path", 5),  # a string field given a number
        ("output_dir", ["a"]),
        ("lora_r", 8.5),
        ("lora_r", [8]),
        ("learning_rate", float("nan")),
        ("num_train_epochs", float("inf")),
        ("lora_dropout", {"p": 0.1}),
        ("lora_target_modules", ["q_proj", 3]),
        ("packing", 2),
        ("use_liger_kernel", "fast"),
    ]:
        bad = write_yaml(tmp_path / "bad.yaml", {**MO, key: value})
        with pytest.raises(config.ConfigError, match=rf"bad\.yaml: config key '{key}'"):
            config.load(bad)


def test_unknown_key_names_the_file_and_the_close_keys(tmp_path: Path) -> None:
    bad = write_yaml(tmp_path / "bad.yaml", {**MO, "lora_rank": 8})
    with pytest.raises(config.ConfigError) as err:
        config.load(bad)
    message = str(err.value)
    assert str(bad) in message and "'lora_rank'" in message
    assert "did you mean" in message and "'lora_r'" in message
    assert "langadapt-train --help" in message


def test_an_alias_bomb_is_refused_quickly_naming_the_file(tmp_path: Path) -> None:
    # 9 ** 9 strings once expanded; ${VAR} expansion walked every copy before the keys were
    # checked. Refused while the file is read, before TRL sees anything.
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(
        f"model_name_or_path: m\noutput_dir: {tmp_path / 'o'}\nlora_target_modules:\n"
        + billion_laughs(indent=2),
        "utf-8",
    )
    # The CLI imports TRL and torch (slow on a loaded CPU): the child imports them before
    # its memory is capped.
    preload = "from langadapt_train import cli, config\nconfig.classes()"
    proc = run_module("langadapt_train", ["--config", str(bomb)], timeout=240, preload=preload)
    assert proc.returncode == 2, proc.stderr
    assert f"langadapt-train: error: {bomb}: line " in proc.stderr
    assert "billion laughs" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()
    with pytest.raises(ConfigError, match=r"bomb\.yaml: line \d+: .* more than 100,000 values"):
        config.read_yaml(bomb)


def test_unknown_keys_are_refused_before_values_are_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LANGADAPT_T_UNSET", raising=False)
    bad = write_yaml(tmp_path / "bad.yaml", {**MO, "lora_rnak": "${LANGADAPT_T_UNSET}"})
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown config key 'lora_rnak'; did you"):
        config.read_yaml(bad)  # not "LANGADAPT_T_UNSET is not set"


@pytest.mark.parametrize(
    "key,value",
    [
        ("hub_token", "hf_abcdefghijklmnopqrstuvwxyz0123"),
        ("HF_TOKEN", "x"),
        ("api_key", "anything"),
        ("system_prompt", "key hf_abcdefghijklmnopqrstuvwxyz0123"),
        ("model_name_or_path", "https://user:s3cretpass@example.com/models/base"),
    ],
)
def test_secrets_in_a_config_file_are_refused_without_echoing_them(
    tmp_path: Path, key: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_yaml(tmp_path / "bad.yaml", {**MO, "output_dir": str(tmp_path / "o"), key: value})
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
        {**MO, "preset": "r16-a48", "learning_rate": 2e-4},
    )
    with caplog.at_level("INFO", logger="langadapt_train"):
        cfg = config.load(cfg_file, {"lora_alpha": "64"}, preset="r8-a32")
    margs = cfg.model_args
    got = (cfg.script.preset, margs.lora_r, margs.lora_alpha, cfg.sft["learning_rate"])
    assert got == ("r8-a32", 8, 64, 2e-4)
    text = caplog.text
    assert "sweep preset r8-a32 replaces preset r16-a48" in text
    assert f"learning_rate=0.0002 (from {cfg_file}) replaces preset r8-a32's 1.6e-05" in text
    assert "lora_alpha=64 (from --lora-alpha) replaces preset r8-a32's 32" in text
    assert "preset r8-a32 sets lora_r=8 (default 16)" in text


def test_sweep_refuses_an_explicit_rank_that_contradicts_a_preset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_file = write_yaml(
        tmp_path / "c.yaml", {**MO, "output_dir": str(tmp_path / "grid"), "lora_r": 16}
    )
    assert main(["sweep", "--config", str(cfg_file), "--presets", "r16-a32,r8-a32"]) == 2
    err = capsys.readouterr().err
    assert "'lora_r'" in err and "r8-a32" in err and str(cfg_file) in err
    assert not (tmp_path / "grid").exists()


def _fake_unfinished_run(out: Path, cfg: config.TrainConfig) -> None:
    """On-disk state of a run stopped after checkpoint 1 (what check_output reads)."""
    checkpoint = out / "checkpoints" / "checkpoint-1"
    checkpoint.mkdir(parents=True)
    (checkpoint / "adapter_model.safetensors").write_bytes(b"weights")
    (checkpoint / "trainer_state.json").write_text("{}")
    cfg.save(out)


def test_resume_refuses_a_changed_config_and_keeps_the_saved_one(tmp_path: Path) -> None:
    from langadapt_train.trainer import TrainError, train

    out = tmp_path / "run"
    first = config.build(None, {**MO, "output_dir": str(out), "lora_dropout": 0.1})
    _fake_unfinished_run(out, first)
    saved = (out / config.CONFIG_NAME).read_text()
    changed = config.build(
        None, {**MO, "output_dir": str(out), "lora_dropout": 0.2, "resume": True}
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
        cfg = config.build(None, {**MO, "output_dir": str(out), "resume": resume})
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
    cfg_file = write_yaml(tmp_path / "c.yaml", {**MO, "output_dir": str(grid)})
    assert main(["sweep", "--config", str(cfg_file), "--presets", "r8-a32"]) == 2
    captured = capsys.readouterr()
    # Refused before the first run of the sweep starts.
    assert "r8-a32: training" not in captured.out and "notes.txt" in captured.err
    assert [p.name for p in (grid / "r8-a32").iterdir()] == ["notes.txt"]


# --- hostile testing, item 1: resume only what langadapt-train wrote -----------------------

USER_ADAPTER_CONFIG = b'{"peft_type": "LORA", "r": 4, "note": "mine"}\n'


def _user_folder_with_an_empty_checkpoint(folder: Path) -> None:
    """Someone's adapter, and an empty checkpoint folder: not a run of langadapt-train."""
    (folder / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    (folder / "adapter_config.json").write_bytes(USER_ADAPTER_CONFIG)


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_sweep_never_resumes_a_folder_it_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = tmp_path / "grid"
    folder = grid / "r8-a32"
    _user_folder_with_an_empty_checkpoint(folder)
    before = _tree(folder)
    cfg_file = write_yaml(tmp_path / "c.yaml", {**MO, "output_dir": str(grid)})
    assert main(["sweep", "--config", str(cfg_file), "--presets", "r8-a32"]) == 2
    captured = capsys.readouterr()
    assert "resuming" not in captured.out
    assert str(folder) in captured.err and "not a run of langadapt-train" in captured.err
    assert "adapter_config.json" in captured.err and "checkpoint-1 (empty)" in captured.err
    assert (folder / "adapter_config.json").read_bytes() == USER_ADAPTER_CONFIG
    assert _tree(folder) == before


def test_resume_never_resumes_a_folder_it_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "adapter"
    _user_folder_with_an_empty_checkpoint(folder)
    before = _tree(folder)
    cfg_file = write_yaml(tmp_path / "c.yaml", {**MO, "output_dir": str(folder), "resume": True})
    for argv in (["--config", str(cfg_file)], ["--config", str(cfg_file), "--no-resume"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert str(folder) in err and "not a run of langadapt-train" in err
        assert "adapter_config.json" in err
        assert (folder / "adapter_config.json").read_bytes() == USER_ADAPTER_CONFIG
        assert _tree(folder) == before


def test_resume_refuses_a_run_whose_checkpoints_are_incomplete_or_damaged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Our own run (its langadapt_train.yaml), but no checkpoint holds what a checkpoint holds:
    an error naming the checkpoint and what it lacks, and nothing is overwritten."""
    folder = tmp_path / "run"
    _user_folder_with_an_empty_checkpoint(folder)
    cfg_file = write_yaml(tmp_path / "c.yaml", {**MO, "output_dir": str(folder), "resume": True})
    config.load(cfg_file).save(folder)
    checkpoint = folder / "checkpoints" / "checkpoint-1"
    assert main(["--config", str(cfg_file)]) == 2
    err = capsys.readouterr().err
    assert f"cannot resume {folder}" in err and "no complete checkpoint" in err
    assert str(checkpoint) in err and "trainer_state.json" in err and "model weights" in err
    # The state without the weights: damaged, not cut short while being written.
    (checkpoint / "trainer_state.json").write_text("{}")
    grid = tmp_path / "grid"
    grid.mkdir()
    folder.rename(grid / "r8-a32")
    folder, checkpoint = grid / "r8-a32", grid / "r8-a32" / "checkpoints" / "checkpoint-1"
    before = _tree(folder)
    sweep_cfg = write_yaml(tmp_path / "s.yaml", {**MO, "output_dir": str(grid)})
    assert main(["sweep", "--config", str(sweep_cfg), "--presets", "r8-a32"]) == 2
    err = capsys.readouterr().err
    assert f"its checkpoint {checkpoint} lacks model weights" in err and "damaged" in err
    assert (folder / "adapter_config.json").read_bytes() == USER_ADAPTER_CONFIG
    assert _tree(folder) == before


def test_resume_passes_over_a_checkpoint_cut_short_while_being_written(tmp_path: Path) -> None:
    from langadapt_train.outputs import check_output

    out = tmp_path / "run"
    _fake_unfinished_run(out, config.build(None, {**MO, "output_dir": str(out)}))
    partial = out / "checkpoints" / "checkpoint-2"  # killed before its trainer state was saved
    partial.mkdir()
    (partial / "adapter_model.safetensors").write_bytes(b"weights")
    assert check_output(out, resume=True) == out / "checkpoints" / "checkpoint-1"
    (partial / "trainer_state.json").write_text("{}")
    assert check_output(out, resume=True) == partial


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
    bad_optim = write_yaml(tmp_path / "optim.yaml", {"optim": "adamw_nonesuch"})
    assert main([*args, "--data", str(good), "--config", str(bad_optim)]) == 2
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
        {
            "model_name_or_path": str(smollm2_dir),
            "output_dir": str(out),
            "data": str(data),
            "decontaminate": False,
        },
    )
    tokenizer, chosen = load_tokenizer(cfg)
    _, manifest, records = prepare_data(cfg, tokenizer, chosen, tmp_path)
    _fake_unfinished_run(out, cfg)
    write_records(out, manifest, records)
    before = (out / MANIFEST).read_text()
    data.write_text(data.read_text().replace("cevap 2", "cevap iki"), "utf-8")
    cfg.script.resume = True
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
    cfg = config.build(None, {**MO, "output_dir": str(tmp_path), "packing": True})
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
    cfg = config.load(write_yaml(tmp_path / "c.yaml", {**MO, "data": "data/mix.yaml"}))
    assert cfg.script.data == str(tmp_path.resolve() / "data" / "mix.yaml")
    spec = mix.resolve(cfg.script.data)
    assert spec.sources[0].path == tmp_path.resolve() / "data" / "rows.jsonl"  # next to the mix
    (tmp_path / "data" / "mix.yaml").write_text(
        "name: mine\nsources:\n  - path: ${LANGADAPT_T_ROWS}\n", "utf-8"
    )
    with pytest.raises(
        mix.MixError, match=r"mix\.yaml: sources\[0\]\.path: \$\{LANGADAPT_T_ROWS\}"
    ):
        mix.resolve(cfg.script.data)


def test_an_unwritable_datasets_cache_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tokenized rows go to a temporary folder in HF_DATASETS_CACHE: one that cannot be
    made is named, with what to do."""
    import datasets

    from langadapt_train.outputs import TrainError
    from langadapt_train.tokenized import scratch_folder

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(blocker / "datasets"))
    with (
        pytest.raises(TrainError, match=r"a-file/datasets.*set HF_DATASETS_CACHE"),
        scratch_folder(),
    ):
        pass
