"""``langadapt-train``: train one adapter, or a sweep of presets.

    langadapt-train --config configs/llama3-zh-qlora.yaml [--any-field VALUE ...]
    langadapt-train --model BASE --data zh-mix --preset r16-a48 --output DIR
    langadapt-train sweep --config CFG --presets r8-a32,r16-a32,r16-a48

A sweep writes one adapter directory per preset under ``--output``
(``<output>/<preset>``), skips presets whose run has finished, and resumes
presets that stopped after a checkpoint.
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
from langadapt_train.presets import PRESETS
from langadapt_train.templates import TemplateError

USER_ERRORS = (config_mod.ConfigError, MixError, DataFileError, DecontamError, TemplateError)


def _parser(prog: str, sweep: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", help="YAML file of config keys (flags override it)")
    if sweep:
        parser.add_argument(
            "--presets", required=True, help=f"comma-separated presets ({', '.join(PRESETS)})"
        )
    config_mod.add_flags(parser)
    return parser


def _config(args: argparse.Namespace, extra: dict | None = None) -> config_mod.TrainConfig:
    overrides = {**config_mod.overrides_from(args), **(extra or {})}
    if args.config:
        return config_mod.load(args.config, overrides)
    return config_mod.build(None, overrides)


def _train(cfg: config_mod.TrainConfig) -> Path:
    from langadapt_train.trainer import train

    return train(cfg)


def sweep(args: argparse.Namespace) -> list[Path]:
    from langadapt_train.trainer import is_finished

    names = [p.strip() for p in args.presets.split(",") if p.strip()]
    unknown = [n for n in names if n not in PRESETS]
    if unknown or not names:
        raise config_mod.ConfigError(
            f"--presets: unknown preset(s) {unknown}; known: {', '.join(PRESETS)}"
        )
    base = _config(args)  # validates everything once, before the first run
    outputs = []
    for name in names:
        output = Path(base.output) / name
        outputs.append(output)
        if is_finished(output):
            print(f"[sweep] {name}: finished already in {output}, skipping", flush=True)
            continue
        resume = output.exists() and any(output.iterdir())
        print(f"[sweep] {name}: {'resuming' if resume else 'training'} -> {output}", flush=True)
        # The preset's values replace lora_r / lora_alpha / learning_rate of the base config.
        extra = {
            "preset": name,
            "output": str(output),
            "resume": resume,
            **{k: v for k, v in PRESETS[name].items()},
        }
        _train(_config(args, extra))
    return outputs


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("langadapt_train").setLevel(logging.INFO)
    is_sweep = bool(argv) and argv[0] == "sweep"
    if argv and argv[0] in ("sweep", "train"):
        argv = argv[1:]
    args = _parser("langadapt-train" + (" sweep" if is_sweep else ""), is_sweep).parse_args(argv)
    try:
        if is_sweep:
            for output in sweep(args):
                print(output)
        else:
            print(_train(_config(args)))
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
    except Exception as err:
        from langadapt_train.trainer import TrainError

        if isinstance(err, TrainError):
            print(f"langadapt-train: error: {err}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
