"""``langadapt-train``: train one adapter, or a sweep of presets.

    langadapt-train --config configs/llama3-zh-qlora.yaml [--any-key VALUE ...]
    langadapt-train --model_name_or_path BASE --data zh-mix --preset r16-a48 --output_dir DIR
    langadapt-train sweep --config CFG --presets r8-a32,r16-a32,r16-a48

The keys are the fields of TRL's SFTConfig and ModelConfig and langadapt's own
(below), in the YAML file and as flags. A sweep writes one adapter directory per
preset under output_dir (<output_dir>/<preset>), skips presets whose run has
finished, and resumes presets that stopped after a checkpoint.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from langadapt_train import config as config_mod
from langadapt_train.data.mix import MixError
from langadapt_train.data.sources import DataFileError
from langadapt_train.decontam import DecontamError
from langadapt_train.outputs import TrainError, check_output, has_checkpoints, is_finished
from langadapt_train.parser import build_parser, given_flags
from langadapt_train.presets import PRESETS
from langadapt_train.templates import TemplateError

USER_ERRORS = (
    config_mod.ConfigError,
    MixError,
    DataFileError,
    DecontamError,
    TemplateError,
    TrainError,
)


def _sources(args: argparse.Namespace, flags: dict) -> tuple[dict, dict, str]:
    """(YAML keys, flag keys, the YAML's name) of this invocation."""
    if args.config:
        return config_mod.read_yaml(args.config), flags, str(args.config)
    return {}, flags, "config"


def _config(
    args: argparse.Namespace, flags: dict, preset: str | None = None
) -> config_mod.TrainConfig:
    yaml_data, overrides, where = _sources(args, flags)
    return config_mod.build(yaml_data, overrides, where, preset)


def _train(cfg: config_mod.TrainConfig) -> Path:
    from langadapt_train.trainer import train  # torch, transformers, TRL: only when training

    return train(cfg)


def sweep(args: argparse.Namespace, flags: dict) -> list[Path]:
    """One run per preset under ``<output>/<preset>``.

    The same precedence as a single run: the sweep's preset fills lora_r / lora_alpha /
    learning_rate unless the YAML or a flag sets them. An explicit lora_r or lora_alpha that
    differs from a preset's is refused: the folder is named after the preset.
    """
    names = [p.strip() for p in args.presets.split(",") if p.strip()]
    unknown = [n for n in names if n not in PRESETS]
    if unknown or not names:
        raise config_mod.ConfigError(
            f"--presets: unknown preset(s) {unknown}; known: {', '.join(PRESETS)}"
        )
    yaml_data, overrides, where = _sources(args, flags)
    explicit = config_mod.explicit_values(yaml_data, overrides, where)
    for name in names:
        for key in ("lora_r", "lora_alpha"):
            if key in explicit and explicit[key][0] != PRESETS[name][key]:
                raise config_mod.ConfigError(
                    f"{explicit[key][1]}: config key {key!r} = {explicit[key][0]} would replace "
                    f"preset {name}'s {PRESETS[name][key]} in the sweep's {name}/ folder; a "
                    "sweep varies lora_r and lora_alpha, so remove them from the config"
                )
    # Every preset's config is validated (and its preset values logged) before the first run.
    configs = {name: _config(args, flags, preset=name) for name in names}
    outputs = [Path(configs[name].output) / name for name in names]
    # So is every preset's folder: a run of ours that saved a checkpoint is resumed, a folder
    # holding anything else is refused (nothing in it is overwritten), before the first run.
    for output in outputs:
        if not is_finished(output):
            check_output(output, resume=has_checkpoints(output), warn=False)
    for name, output in zip(names, outputs, strict=True):
        if is_finished(output):
            print(f"[sweep] {name}: finished already in {output}, skipping", flush=True)
            continue
        resume = has_checkpoints(output)
        print(f"[sweep] {name}: {'resuming' if resume else 'training'} -> {output}", flush=True)
        cfg = configs[name]
        cfg.relocate(output, resume)
        _train(cfg)
    return outputs


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("langadapt_train").setLevel(logging.INFO)
    is_sweep = bool(argv) and argv[0] == "sweep"
    if argv and argv[0] in ("sweep", "train"):
        argv = argv[1:]
    parser = build_parser("langadapt-train" + (" sweep" if is_sweep else ""), __doc__, is_sweep)
    try:
        flags, args = given_flags(parser, argv)
        if is_sweep:
            for output in sweep(args, flags):
                print(output)
        else:
            print(_train(_config(args, flags)))
    except KeyboardInterrupt:
        print(
            "langadapt-train: interrupted; run the same command with --resume to continue "
            "from the last checkpoint",
            file=sys.stderr,
        )
        return 130
    except USER_ERRORS as err:
        print(f"langadapt-train: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
