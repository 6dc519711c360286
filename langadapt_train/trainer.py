"""One training run: data -> tokens -> (Q)LoRA or full fine-tuning with TRL -> adapter dir.

The output directory holds, when the run has finished:

- the adapter (``adapter_config.json``, ``adapter_model.safetensors``) or, for
  ``method: full``, the whole model;
- the tokenizer with the chat template used for training;
- ``langadapt_train.yaml`` (the resolved config), ``data_manifest.json``,
  ``decontamination.jsonl`` (dropped rows and why), ``heldout.jsonl``;
- ``loss.jsonl`` / ``loss.csv`` / ``loss.png``;
- ``checkpoints/checkpoint-N`` (for ``--resume``) and ``training_complete.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from langadapt_train import config as config_mod
from langadapt_train import losslog, templates, tokenized
from langadapt_train.config import TrainConfig
from langadapt_train.data import mix
from langadapt_train.decontam import build_index
from langadapt_train.outputs import (
    CHECKPOINTS,
    CONFIG_NAME,
    DECONTAM_REPORT,
    DONE,
    HELDOUT,
    MANIFEST,
    PREVIEW,
    TrainError,
    check_output,
)

log = logging.getLogger("langadapt_train")

# --- data --------------------------------------------------------------------------------


def load_tokenizer(cfg: TrainConfig) -> tuple[Any, templates.ChosenTemplate]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        cfg.script.tokenizer or cfg.model_args.model_name_or_path,
        trust_remote_code=cfg.sft["trust_remote_code"],
    )
    if not tokenizer.is_fast:
        raise TrainError("a fast tokenizer is needed (assistant tokens are located by offsets)")
    chosen = templates.choose(cfg.script.chat_template, tokenizer)
    templates.install(tokenizer, chosen)
    return tokenizer, chosen


def prepare_data(
    cfg: TrainConfig, tokenizer: Any, chosen: templates.ChosenTemplate, scratch: Path
) -> tuple[Any, dict[str, Any], dict[str, list]]:
    """Build the mix and tokenize it: (training rows as a memory-mapped ``datasets.Dataset``
    in ``scratch``, manifest, records to write).

    The output folder is not written: it is touched only once every check has passed.
    """
    own = cfg.script
    spec = mix.resolve(own.data)
    index = None
    if own.decontaminate:
        index = build_index(
            own.decontam_ngram, own.cmmlu_dir, own.mt_bench_dir, own.turkishmmlu_dir
        )
    built = mix.build(
        spec, index, system_prompt=own.system_prompt, max_rows=own.max_rows, heldout=own.heldout
    )
    max_length, assistant_only = cfg.sft["max_length"], cfg.sft["assistant_only_loss"]

    writer = tokenized.RowWriter(scratch, masks=assistant_only)
    preview: list[dict[str, Any]] = []  # what training saw, for checking the template round trip
    skipped: Counter = Counter()
    truncated = tokens = loss_tokens = 0
    for messages in built.train:
        enc = templates.encode(tokenizer, messages, max_length, assistant_only, chosen)
        if sum(enc["assistant_masks"]) == 0:
            skipped[f"no assistant token within max_length={max_length}"] += 1
            continue
        truncated += enc["truncated"]
        tokens += len(enc["input_ids"])
        loss_tokens += sum(enc["assistant_masks"])
        row = {"input_ids": enc["input_ids"]}
        if assistant_only:
            row["assistant_masks"] = enc["assistant_masks"]
        writer.add(row)
        if len(preview) < 3:
            preview.append(
                {"messages": messages, "input_ids": enc["input_ids"], "truncated": enc["truncated"]}
            )
    if not writer.count:
        raise TrainError(f"no training rows left; skipped: {dict(skipped)}")

    manifest = {
        "mix": {
            "name": spec.name,
            "file": spec.file,
            "sha256": spec.sha256,
            "seed": spec.seed,
            "language": spec.language,
            "system_prompt": built.train[0][0]["content"]
            if built.train[0][0]["role"] == "system"
            else None,
        },
        "sources": [
            {
                "name": r.name,
                "origin": r.origin,
                "schema": r.schema,
                "sha256": r.sha256,
                "rows": r.rows,
                "bad_rows": dict(r.bad),
                "duplicates": r.duplicates,
                "examined": r.examined,
                "contaminated": r.contaminated,
                "selected": r.selected,
            }
            for r in built.sources
        ],
        "decontamination": {
            "enabled": own.decontaminate,
            "ngram": own.decontam_ngram,
            "eval_items": dict(index.sources) if index else {},
            # Evaluation sets that could not be checked (e.g. TurkishMMLU without its data).
            "unavailable": dict(index.unavailable) if index else {},
            "dropped": len(built.dropped),
            "report": DECONTAM_REPORT,
        },
        "split": {
            "train": len(built.train),
            "heldout": len(built.heldout),
            "heldout_copies_left_out": built.heldout_copies,
        },
        "tokenized": {
            "rows": writer.count,
            "skipped": dict(skipped),
            "truncated": truncated,
            "tokens": tokens,
            "loss_tokens": loss_tokens,
            "max_length": max_length,
        },
        "template": {"name": chosen.name, "sha256": chosen.sha256},
        "train_sha256": writer.sha256,
    }
    for src in manifest["sources"]:
        log.info(
            "source %s: %d rows, bad %s, %d duplicates, %d contaminated, %d selected",
            src["name"],
            src["rows"],
            src["bad_rows"] or "none",
            src["duplicates"],
            src["contaminated"],
            src["selected"],
        )
    if skipped:
        log.info("skipped after tokenization: %s", dict(skipped))
    records = {
        DECONTAM_REPORT: built.dropped,
        PREVIEW: preview,
        HELDOUT: [{"messages": m} for m in built.heldout],
    }
    return writer.finish(), manifest, records


def write_records(output: Path, manifest: dict[str, Any], records: dict[str, list]) -> None:
    for name, items in records.items():
        with (output / name).open("w", encoding="utf-8") as fh:
            for item in items:
                fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    (output / MANIFEST).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8"
    )


# Manifest entries that may differ between a run and its resumption (where files are, not
# what they hold).
_MANIFEST_IGNORED = re.compile(r"^(mix\.file|sources\[\d+\]\.origin)$")


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def manifest_changes(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """``entry: old -> new`` for every data-manifest entry that differs."""
    a, b = _flatten(before), _flatten(now)
    return [
        f"{key}: {a.get(key, '(absent)')!r} -> {b.get(key, '(absent)')!r}"
        for key in sorted(set(a) | set(b))
        if not _MANIFEST_IGNORED.match(key) and a.get(key) != b.get(key)
    ]


# --- model -------------------------------------------------------------------------------


def compute_dtype(cfg: TrainConfig) -> Any:
    """The torch dtype the model computes in: ModelConfig's ``dtype`` (set from ``precision``
    unless given); ``auto`` follows bf16 / fp16."""
    import torch

    name = cfg.model_args.dtype
    if name in (None, "auto"):
        name = "bfloat16" if cfg.sft["bf16"] else "float16" if cfg.sft["fp16"] else "float32"
    return getattr(torch, name)


def under_fsdp() -> bool:
    """Launched by ``accelerate launch`` with an FSDP config (the variable transformers reads)."""
    from accelerate.utils import parse_flag_from_env

    return parse_flag_from_env("ACCELERATE_USE_FSDP")


def quant_storage(cfg: TrainConfig, fsdp: bool) -> str:
    """The dtype that holds QLoRA's packed 4-bit weights (``bfloat16``, ``uint8``, ...).

    FSDP shards float tensors only, and all tensors of one FSDP unit must share a dtype, so
    under FSDP unset means the compute dtype (float32 for fp16 compute, as PEFT's FSDP-QLoRA
    guide advises for stable mixed precision); elsewhere bitsandbytes' own uint8.
    """
    import torch

    if cfg.model_args.bnb_4bit_quant_storage is not None:
        return cfg.model_args.bnb_4bit_quant_storage
    if not fsdp:
        return "uint8"
    dtype = compute_dtype(cfg)
    return "float32" if dtype == torch.float16 else str(dtype).removeprefix("torch.")


def quantization_config(cfg: TrainConfig, fsdp: bool) -> Any:
    """The BitsAndBytesConfig of ``method: qlora`` from TRL's helper: NF4 with double
    quantization by default, computing in the model's dtype."""
    from trl import get_quantization_config

    args = dataclasses.replace(
        cfg.model_args,
        dtype=str(compute_dtype(cfg)).removeprefix("torch."),
        bnb_4bit_quant_storage=quant_storage(cfg, fsdp),
    )
    return get_quantization_config(args)


def load_model(cfg: TrainConfig) -> tuple[Any, Any]:
    """The model to train and the PEFT config (None for full fine-tuning)."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import DistributedType
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM
    from trl import get_peft_config

    method, margs = cfg.script.method, cfg.model_args
    fsdp = under_fsdp()
    kwargs: dict[str, Any] = {
        "dtype": compute_dtype(cfg),
        "revision": margs.model_revision,
        "trust_remote_code": cfg.sft["trust_remote_code"],
    }
    if margs.attn_implementation is not None:
        kwargs["attn_implementation"] = margs.attn_implementation
    if method == "qlora":
        bnb = quantization_config(cfg, fsdp)
        kwargs["quantization_config"] = bnb
        if fsdp and bnb.bnb_4bit_quant_storage.is_floating_point:
            # The unquantized weights (norms, embeddings) share FSDP units with the packed
            # ones: load them in the storage dtype (PEFT's FSDP-QLoRA guide).
            kwargs["dtype"] = bnb.bnb_4bit_quant_storage
        state = PartialState()
        if not fsdp and torch.cuda.is_available() and state.distributed_type != DistributedType.NO:
            # DDP: every process holds the whole 4-bit model on its own GPU. Under FSDP the
            # model is loaded without a device map and accelerate shards and places it.
            kwargs["device_map"] = {"": state.local_process_index}
    model = AutoModelForCausalLM.from_pretrained(margs.model_name_or_path, **kwargs)
    # No KV cache in training: with one, transformers skips the packed-sequence (block-diagonal)
    # mask that keeps packed samples from attending to each other.
    model.config.use_cache = False
    if method == "qlora" and not fsdp and cfg.script.upcast_non_quantized:
        # PEFT's preparation: the weights that are not quantized (norms, embeddings, the LM
        # head) in fp32. By default they stay in the compute dtype, as `trl sft` keeps them;
        # gradient checkpointing and input gradients are then set up by the trainer and TRL.
        # Under FSDP it is never run: FSDP cannot flatten fp32 weights with the packed ones.
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=cfg.sft["gradient_checkpointing"],
            gradient_checkpointing_kwargs=cfg.sft["gradient_checkpointing_kwargs"],
        )
    if method == "qlora":
        kept = sorted({str(p.dtype) for p in model.parameters() if p.is_floating_point()})
        log.info(
            "QLoRA: the weights not quantized are in %s (upcast_non_quantized: %s)",
            ", ".join(t.removeprefix("torch.") for t in kept),
            cfg.script.upcast_non_quantized,
        )
    # TRL's helper: LoRA with ModelConfig's lora_* keys (None when use_peft is off: full).
    return model, get_peft_config(margs)


def keep_adapter_fp32(model: Any) -> None:
    """Trainable weights in fp32.

    TRL casts QLoRA adapter weights to bf16, but PEFT loads them back as fp32 when a
    checkpoint is resumed, so a resumed run would not continue the same computation. fp32
    adapters (PEFT's own default: ``get_peft_model``'s ``autocast_adapter_dtype=True``, PEFT
    0.21) make both paths identical and keep the updates that bf16 would round away; they
    are a small share of memory (docs/training.md).
    """
    import torch

    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()


def sft_config(cfg: TrainConfig, output: Path) -> Any:
    """TRL's SFTConfig of the run. Building it starts the process group under
    ``accelerate launch``.

    Checkpoints go to ``<output>/checkpoints``. The rows are tokenized and masked here
    (``templates.encode``), so TRL is not asked to mask assistant turns again: it keeps the
    rows' ``assistant_masks`` as they are.
    """
    from trl import SFTConfig

    own = {"output_dir": str(output / CHECKPOINTS), "assistant_only_loss": False}
    if cfg.sft["padding_free"] and not cfg.sft["packing"]:
        own["max_length"] = None  # the rows are truncated already; TRL refuses it otherwise
    return SFTConfig(**{**cfg.sft, **own})


# --- the run -----------------------------------------------------------------------------


def _check_same_config(output: Path, cfg: TrainConfig) -> None:
    """A resumed run must use the settings it started with."""
    before = config_mod.saved(output)
    if before is None:
        raise TrainError(
            f"cannot resume {output}: its {CONFIG_NAME} is missing, so the settings cannot be "
            "checked; start a new run in another --output"
        )
    changed = config_mod.changes(before, cfg)
    if changed:
        raise TrainError(
            f"cannot resume {output}: the config differs from the run's ({CONFIG_NAME}): "
            + "; ".join(changed)
            + ". Resume with the same settings, or start a new run in another --output"
        )


def _same_on_every_rank(state: Any, manifest: dict[str, Any]) -> None:
    """Every process must train on the same data; also the point past which the main process
    writes, so no process still reads the folder (the resume checks) while it is rewritten."""
    from accelerate.utils import gather_object

    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    digests = gather_object([digest])
    if len(set(digests)) > 1:
        raise TrainError(
            "the processes of this run prepared different training data (data manifest "
            f"sha256 per process: {digests}); every process must see the same files and settings"
        )


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) training; returns the output directory.

    Under ``accelerate launch`` every process runs this: each one checks the output folder and
    prepares the data (the results are compared across processes) into its own temporary
    folder (``tokenized``), and only the main process writes the output folder's files;
    checkpoints and the model are saved by the trainer.
    """
    from accelerate import PartialState
    from transformers import set_seed

    output = Path(cfg.output).expanduser().resolve()
    checkpoint = check_output(output, cfg.script.resume)
    if checkpoint is not None:
        _check_same_config(output, cfg)
    try:
        args = sft_config(cfg, output)  # starts the process group under accelerate launch
    except ValueError as err:  # transformers checks optim, lr_scheduler_type, ...
        keys = [
            k for k, v in cfg.settings.items() if isinstance(v, str) and f"{v} is not" in str(err)
        ]
        where = f"config key {keys[0]!r}: " if keys else "the trainer refused the settings: "
        raise TrainError(where + str(err)) from None
    state = PartialState()
    if not state.is_main_process:
        log.setLevel(logging.WARNING)  # one copy of the run's log, from the main process
    set_seed(cfg.sft["seed"])
    with tokenized.scratch_folder() as scratch:
        return _train(cfg, output, checkpoint, args, state, scratch)


def _train(
    cfg: TrainConfig, output: Path, checkpoint: Path | None, args: Any, state: Any, scratch: Path
) -> Path:
    """``train`` once the settings are checked: the tokenized rows live in ``scratch``."""
    from trl import SFTTrainer

    tokenizer, chosen = load_tokenizer(cfg)
    dataset, manifest, records = prepare_data(cfg, tokenizer, chosen, scratch)
    previous = output / MANIFEST
    if checkpoint is not None and previous.is_file():
        changed = manifest_changes(json.loads(previous.read_text("utf-8")), manifest)
        if changed:
            raise TrainError(
                f"cannot resume {output}: the training data differ from the run's "
                f"({MANIFEST}): " + "; ".join(changed[:8]) + ". Resume with the same data, or "
                "start a new run in another --output"
            )
    if state.num_processes > 1:
        _same_on_every_rank(state, manifest)
    log.info(
        "training rows: %d (%d tokens, %d in the loss); %d process(es)",
        dataset.num_rows,
        manifest["tokenized"]["tokens"],
        manifest["tokenized"]["loss_tokens"],
        state.num_processes,
    )

    model, peft_config = load_model(cfg)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[losslog.LossLogger(output)],
    )
    # Every check has passed: only now is the output folder written, by the main process.
    if state.is_main_process:
        output.mkdir(parents=True, exist_ok=True)
        cfg.save(output)
        write_records(output, manifest, records)
    del records
    if cfg.script.method != "full":
        keep_adapter_fp32(trainer.model)
    started = time.time()
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)

    trainer.model.config.use_cache = True  # for inference from the saved model
    if trainer.is_fsdp_enabled:
        # Checkpoints are sharded; the final adapter is gathered into one file that loads
        # without FSDP (PEFT's FSDP guide).
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(output))  # every process takes part; the main one writes
    if not state.is_main_process:
        return output
    tokenizer.save_pretrained(str(output))  # carries the chat template used for training
    margs = cfg.model_args
    losslog.plot(
        output,
        f"{Path(margs.model_name_or_path).name} {cfg.script.method} r={margs.lora_r} "
        f"a={margs.lora_alpha} on {manifest['mix']['name']}",
    )
    done = {
        "global_step": trainer.state.global_step,
        "train_loss": result.training_loss,
        "processes": state.num_processes,
        "resumed_from": checkpoint.name if checkpoint else None,
        "seconds": round(time.time() - started, 1),
        "metrics": result.metrics,
    }
    (output / DONE).write_text(json.dumps(done, indent=2) + "\n", "utf-8")
    return output
