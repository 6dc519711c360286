"""How the study starts ``lm_eval``: the model backend (hf, langadapt-hf, vLLM) and processes."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

ENGINES = ("hf", "vllm")
SHARED_PREFIX_MODEL = "langadapt-hf"  # langadapt_tasks.backend: the shots scored once
# vLLM allocates LoRA slots of these ranks only (vllm.config.LoRAConfig's possible_max_ranks).
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
# Model arguments the study writes itself (the model and its adapter).
OWN_MODEL_ARGS = ("pretrained", "peft", "lora_local_path", "max_lora_rank")


@dataclass(frozen=True)
class Engine:
    """``evaluate.engine``, ``processes``, ``shared_prefix`` and ``engine_args``."""

    name: str = "hf"  # hf | vllm
    processes: int = 1  # hf: more than one = accelerate launch, lm-eval's data parallel
    shared_prefix: bool = True  # hf: multiple-choice runs through langadapt-hf
    model_args: str = ""  # appended to --model_args, e.g. "gpu_memory_utilization=0.8"


class EngineError(ValueError):
    """An adapter the engine cannot load as given."""


def executable(name: str) -> str:
    """A console script of this interpreter's environment, else the one on PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def launcher(engine: Engine) -> list[str]:
    """The command that starts lm_eval: itself, or under ``accelerate launch``."""
    if engine.processes > 1:
        n = str(engine.processes)
        return [executable("accelerate"), "launch", "--num_processes", n, "-m", "lm_eval"]
    return [executable("lm_eval")]


def model_name(engine: Engine, generation_only: bool, adapter: bool) -> str:
    """lm-eval's ``--model``: vLLM, else langadapt-hf where it helps (a run with
    multiple-choice tasks; generation falls through to hf unchanged) or where an adapter must
    be checked to apply (its check_adapter probe), else hf."""
    if engine.name == "vllm":
        return "vllm"
    if adapter or shares_prefix(engine, generation_only):
        return SHARED_PREFIX_MODEL
    return "hf"


def shares_prefix(engine: Engine, generation_only: bool) -> bool:
    """Whether a langadapt-hf run scores shared prefixes once (else it scores as hf)."""
    return engine.shared_prefix and not generation_only


def lora_rank(adapter: Path) -> int:
    """The highest LoRA rank in a PEFT adapter folder (``r`` and any ``rank_pattern``)."""
    path = Path(adapter) / "adapter_config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EngineError(f"{path}: cannot read the adapter's config ({exc})") from exc
    ranks = [config.get("r"), *(config.get("rank_pattern") or {}).values()]
    ranks = [int(r) for r in ranks if isinstance(r, int) and r > 0]
    if not ranks:
        raise EngineError(f"{path}: no LoRA rank 'r' in the adapter's config")
    return max(ranks)


def vllm_max_lora_rank(rank: int) -> int:
    """The smallest LoRA slot vLLM offers that holds ``rank`` (lm-eval's default of 16
    refuses adapters of higher rank)."""
    for slot in VLLM_LORA_RANKS:
        if rank <= slot:
            return slot
    raise EngineError(f"LoRA rank {rank} is above vLLM's largest ({VLLM_LORA_RANKS[-1]})")


def model_args(engine: Engine, pretrained: str, peft: str | None) -> str:
    """``--model_args``: the model and its adapter as the backend takes them."""
    args = f"pretrained={pretrained}"
    if peft and engine.name == "vllm":
        rank = vllm_max_lora_rank(lora_rank(Path(peft)))
        args += f",lora_local_path={peft},max_lora_rank={rank}"
    elif peft:
        args += f",peft={peft}"
    return f"{args},{engine.model_args}" if engine.model_args else args
