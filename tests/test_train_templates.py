"""langadapt-train chat templates, assistant masks, and packing without cross-sample attention."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from langadapt_train import templates

CONV = [
    {"role": "system", "content": "你是一个助手。"},
    {"role": "user", "content": "你好"},
    {"role": "assistant", "content": "你好！有什么可以帮你？"},
    {"role": "user", "content": "一加一等于几？"},
    {"role": "assistant", "content": "等于二。"},
]


@pytest.fixture
def tokenizer(smollm2_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir)


# With a vocabulary that lacks Llama-3's special tokens, one token straddles "<|eot_id|>" and
# the next header's "<"; it starts inside the reply, so it is kept in the loss.
@pytest.mark.parametrize(
    "spec,end,between",
    [(None, "<|im_end|>\n", ""), ("llama3", "<|eot_id|>", "<"), ("mistral", "<|im_end|>", "")],
)
def test_assistant_mask_covers_exactly_the_replies(
    tokenizer, spec: str | None, end: str, between: str
) -> None:
    templates.install(tokenizer, templates.choose(spec, tokenizer))
    enc = templates.encode(tokenizer, CONV, max_length=4096)
    assert not enc["truncated"]
    # The ids are what the tokenizer's own chat templating produces ...
    assert enc["input_ids"] == list(
        tokenizer.apply_chat_template(CONV, tokenize=True, return_dict=True)["input_ids"]
    )
    # ... and the loss mask selects the two replies, each with its end-of-turn marker.
    kept = tokenizer.decode(
        [t for t, m in zip(enc["input_ids"], enc["assistant_masks"], strict=True) if m]
    )
    assert kept.replace(" ", "") == f"你好！有什么可以帮你？{end}{between}等于二。{end}".replace(
        " ", ""
    )
    # Truncation keeps the mask aligned.
    short = templates.encode(tokenizer, CONV, max_length=10)
    assert short["truncated"] and len(short["input_ids"]) == len(short["assistant_masks"]) == 10


def test_builtin_templates_render_their_formats(tokenizer) -> None:
    for name, marks in [
        (
            "llama3",
            [
                "<|start_header_id|>system<|end_header_id|>\n\n你是一个助手。<|eot_id|>",
                "<|start_header_id|>assistant<|end_header_id|>",
            ],
        ),
        (
            "mistral",
            [
                "[INST] 你是一个助手。\n\n你好 [/INST] 你好！有什么可以帮你？",
                "[INST] 一加一等于几？ [/INST] 等于二。",
            ],
        ),
    ]:
        templates.install(tokenizer, templates.choose(name, tokenizer))
        text = templates.render(tokenizer, CONV)
        for mark in marks:
            assert mark in text, (name, text)


def test_template_by_path_and_missing_template(tokenizer, tmp_path: Path) -> None:
    path = tmp_path / "t.jinja"
    path.write_text(
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</s>"
        "{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}",
        "utf-8",
    )
    chosen = templates.choose(str(path), tokenizer)
    templates.install(tokenizer, chosen)
    assert (
        templates.render(tokenizer, CONV[1:3])
        == "<user>你好</s><assistant>你好！有什么可以帮你？</s>"
    )
    tokenizer.chat_template = None
    with pytest.raises(templates.TemplateError, match="no chat template"):
        templates.choose(None, tokenizer)
    with pytest.raises(templates.TemplateError, match="'chat_template'"):
        templates.choose("vicuna", tokenizer)


def test_non_prefix_preserving_template_is_refused(tokenizer) -> None:
    # Renders the last assistant reply differently from earlier ones.
    tokenizer.chat_template = (
        "{% for m in messages %}{% if loop.last %}[{{ m['content'] }}]"
        "{% else %}{{ m['content'] }}|{% endif %}{% endfor %}"
    )
    with pytest.raises(templates.TemplateError, match="prefix-preserving"):
        templates.encode(tokenizer, CONV, 512)


def test_saved_tokenizer_round_trip(tokenizer, tmp_path: Path) -> None:
    """A base model without a template: the chosen one is saved and reproduces training ids."""
    tokenizer.chat_template = None
    templates.install(tokenizer, templates.choose("llama3", tokenizer))
    train_ids = templates.encode(tokenizer, CONV, 4096)["input_ids"]
    tokenizer.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    saved = AutoTokenizer.from_pretrained(tmp_path)
    assert (
        saved.apply_chat_template(CONV, tokenize=True, return_dict=True)["input_ids"] == train_ids
    )


def test_packing_has_no_cross_sample_attention(smollm2_dir: Path) -> None:
    """TRL's padding-free collator (used with packing) gives each sample its own attention."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32).eval()
    a, b = list(range(100, 117)), list(range(300, 311))
    collator = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)
    batch = collator([{"input_ids": a}, {"input_ids": b}])
    assert batch["input_ids"].shape == (1, len(a) + len(b))
    assert batch["position_ids"][0, len(a)].item() == 0  # b starts over
    with torch.no_grad():
        # Training runs without a KV cache (the trainer sets use_cache=False); with a cache
        # transformers does not look for packed sequences.
        packed = model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False
        ).logits
        alone = model(input_ids=torch.tensor([b]), use_cache=False).logits
        leaky = model(input_ids=batch["input_ids"], use_cache=False).logits  # b sees a
    torch.testing.assert_close(packed[0, len(a) :], alone[0], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(leaky[0, len(a) :], alone[0], atol=1e-2)


@pytest.fixture
def base_copy(smollm2_dir: Path, tmp_path: Path) -> Path:
    """SmolLM2 as a 'base model': same weights, no chat template."""
    out = tmp_path / "base"
    out.mkdir()
    for item in smollm2_dir.iterdir():
        if item.name == "chat_template.jinja":
            continue
        (out / item.name).symlink_to(item) if item.suffix == ".safetensors" else shutil.copy(
            item, out / item.name
        )
    return out


def test_base_model_without_template_needs_one(base_copy: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from langadapt_train.config import build
    from langadapt_train.trainer import load_tokenizer

    assert not AutoTokenizer.from_pretrained(base_copy).chat_template
    with pytest.raises(templates.TemplateError, match="--chat-template"):
        load_tokenizer(build(None, {"model_name_or_path": str(base_copy), "output_dir": "o"}))
    tok, chosen = load_tokenizer(
        build(
            None,
            {"model_name_or_path": str(base_copy), "output_dir": "o", "chat_template": "mistral"},
        )
    )
    assert chosen.name == "mistral" and tok.chat_template == templates.builtin_text("mistral")


def test_rows_too_long_for_max_length_are_counted(smollm2_dir: Path, tmp_path: Path) -> None:
    import json

    from langadapt_train.config import build
    from langadapt_train.trainer import MANIFEST, load_tokenizer, prepare_data, write_records

    data = tmp_path / "rows.jsonl"
    rows = [
        {
            "instruction": "很长的问题。" * 40,
            "output": "答案。",
        },  # the prompt alone fills 48 tokens
        {
            "instruction": "短问题",
            "output": "很长的回答。" * 40,
        },  # truncated, still has loss tokens
        {"instruction": "你好", "output": "你好！"},
    ]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    out = tmp_path / "out"
    out.mkdir()
    cfg = build(
        None,
        {
            "model_name_or_path": str(smollm2_dir),
            "output_dir": str(out),
            "data": str(data),
            "max_length": 48,
            "decontaminate": False,
            "system_prompt": "",
        },
    )
    tok, chosen = load_tokenizer(cfg)
    encoded, manifest, records = prepare_data(cfg, tok, chosen, tmp_path)
    assert not any(out.iterdir())  # nothing is written while the data are being checked
    # The two kept rows as transformers encodes them with the model's own chat template (we
    # add no system message: system_prompt ''), the long answer cut at max_length.
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(smollm2_dir)

    def chat_ids(row: dict[str, str]) -> list[int]:
        conversation = [
            {"role": "user", "content": row["instruction"]},
            {"role": "assistant", "content": row["output"]},
        ]
        return list(reference.apply_chat_template(conversation, tokenize=True)["input_ids"])

    expected = [chat_ids(rows[1])[:48], chat_ids(rows[2])]
    assert len(chat_ids(rows[1])) > 48 and len(expected[1]) < 48
    assert sorted(r["input_ids"] for r in encoded) == sorted(expected)
    assert manifest["tokenized"]["skipped"] == {"no assistant token within max_length=48": 1}
    assert manifest["tokenized"]["truncated"] == 1
    write_records(out, manifest, records)
    assert json.loads((out / MANIFEST).read_text())["tokenized"] == manifest["tokenized"]


# --- hostile testing, item 10: a template that cannot be rendered is a config error --------


@pytest.mark.parametrize(
    "text,line,why",
    [
        # Refused by the sandbox transformers renders chat templates in (SecurityError).
        (
            "{% for m in messages %}\n{{ m['content'].__class__.__mro__ }}{% endfor %}",
            2,
            "refused by Jinja's sandbox (access to attribute '__class__' of 'str' object",
        ),
        ("{% for m in messages %}{{ m['content'] }}", 1, "not valid Jinja"),
        (
            "{% for m in messages %}{{ raise_exception('no ' + m['role']) }}{% endfor %}",
            1,
            "rendering a training conversation failed (TemplateError: no system)",
        ),
        ("x\n\n{{ messages[0]['content'] + 1 }}", 3, "TypeError: can only concatenate str"),
    ],
    ids=["sandbox", "syntax", "raise_exception", "type_error"],
)
def test_template_that_cannot_be_rendered_is_a_config_error(
    smollm2_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    line: int,
    why: str,
) -> None:
    from langadapt_train.cli import main

    template = tmp_path / "mine.jinja"
    template.write_text(text, "utf-8")
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"instruction": "soru", "output": "cevap"}\n', "utf-8")
    out = tmp_path / "out"
    argv = ["--model_name_or_path", str(smollm2_dir), "--output_dir", str(out)]
    argv += ["--data", str(rows), "--no-decontaminate", "--system-prompt", "sys"]
    assert main([*argv, "--chat-template", str(template)]) == 2
    err = capsys.readouterr().err
    said = f"langadapt-train: error: config key 'chat_template': chat template file {template}"
    assert f"{said}, line {line}: " in err and why in err, err
    assert "Traceback" not in err
    assert not out.exists()  # refused before anything is written
