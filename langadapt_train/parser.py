"""``langadapt-train``'s flags: TRL's ``TrlParser`` over ``LangadaptArguments``, ``SFTConfig``
and ``ModelConfig``, so every field is a flag (``--lora_r`` / ``--lora-r``) and ``--help``
lists them all, with langadapt's defaults.

Only the flags given on the command line are returned: the YAML file sits between the
defaults and the flags (``langadapt_train.config``).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from langadapt_train.arguments import LANGADAPT_DEFAULTS, RENAMED
from langadapt_train.config import classes, fields, hints
from langadapt_train.presets import PRESETS

log = logging.getLogger("langadapt_train")

# The flags of langadapt's first releases, as aliases of TRL's (``--model`` would otherwise be
# an ambiguous abbreviation of --model_name_or_path and --model_revision).
_ALIASES = {
    "model": {},
    "output": {},
    "target_modules": {"nargs": "+"},
    "warmup_ratio": {"type": float},
}


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The usage text as written, and every flag's default."""


def build_parser(prog: str, description: str, sweep: bool) -> Any:
    from trl import TrlParser

    parser = TrlParser(
        list(classes()),
        prog=prog,
        description=description,
        formatter_class=_Formatter,
    )
    parser.add_argument(
        "--config", help="YAML file of config keys (flags override it; see the keys below)"
    )
    if sweep:
        parser.add_argument(
            "--presets", required=True, help=f"comma-separated presets ({', '.join(PRESETS)})"
        )
    for old, kwargs in _ALIASES.items():
        new = RENAMED[old]
        parser.add_argument(
            f"--{old}",
            *([f"--{old.replace('_', '-')}"] if "_" in old else []),
            dest=new,
            help=f"the same as --{new} (the key's earlier name)",
            **kwargs,
        )
    # --no-<key> for every boolean key (HfArgumentParser adds it only where the default is true).
    flags = {s for action in parser._actions for s in action.option_strings}
    for key in _bool_fields():
        if f"--no_{key}" not in flags:
            parser.add_argument(
                f"--no_{key}",
                f"--no-{key.replace('_', '-')}",
                dest=key,
                action="store_false",
                help=argparse.SUPPRESS,
            )
    # --help shows langadapt's defaults where they differ from TRL's.
    parser.set_defaults_with_config(**LANGADAPT_DEFAULTS)
    return parser


def _bool_fields() -> list[str]:
    return [key for key, (cls, _) in fields().items() if hints(cls)[key] in (bool, bool | None)]


def given_flags(
    parser: argparse.ArgumentParser, argv: list[str]
) -> tuple[dict[str, Any], argparse.Namespace]:
    """(the config keys set on the command line, the command's own options: ``config`` and,
    for a sweep, ``presets``). Defaults are left out: the YAML file sits between them and
    the flags."""
    for old in _ALIASES:
        spellings = {f"--{old}", f"--{old.replace('_', '-')}"}
        if any(arg.split("=", 1)[0] in spellings for arg in argv):
            log.warning("flag --%s is now --%s; read as that", old, RENAMED[old])
    if {"-h", "--help"} & set(argv):
        parser.parse_args(argv)  # prints --help with the defaults and exits
    saved = [(action, action.default) for action in parser._actions]
    try:
        for action, _ in saved:
            if action.dest != "help":
                action.default = argparse.SUPPRESS
        given = vars(parser.parse_args(argv))
    finally:
        for action, old in saved:
            action.default = old
    options = argparse.Namespace(**{k: given.pop(k, None) for k in ("config", "presets")})
    return given, options
