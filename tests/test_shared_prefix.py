"""``langadapt-hf``: each group's shared prefix runs once, the scores equal lm-eval's ``hf``."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import HFRun, lm_eval_bin, run_cli, task_manager

from langadapt_tasks.backend import autoregister
from langadapt_tasks.backend.prefix import group_by_prefix

PTH = Path(autoregister.__file__).with_name("langadapt_lm_eval.pth")
TOLERANCE = 1e-4  # fp32, per request


class TokenMeter:
    """Forward passes through a model: the input length of every pass run without a KV cache
    (a prefix, or a whole input), and all real (unpadded) input tokens."""

    def __init__(self, model: Any) -> None:
        self.uncached: list[int] = []
        self.tokens = 0
        self.handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: Any, args: tuple, kwargs: dict) -> None:
        ids = args[0] if args else kwargs["input_ids"]
        cached = kwargs.get("cache") is not None or kwargs.get("past_key_values") is not None
        mask = kwargs.get("attention_mask")
        real = ids.numel() if mask is None else int(mask[:, -ids.shape[1] :].sum())
        self.tokens += real
        if not cached:
            self.uncached += [ids.shape[1]] * ids.shape[0]

    def close(self) -> None:
        self.handle.remove()


def evaluate(lm: Any, tasks: list[str], metadata: dict, **kwargs: Any) -> dict:
    import lm_eval

    return lm_eval.simple_evaluate(
        model=lm, tasks=tasks, task_manager=task_manager(**metadata), log_samples=True, **kwargs
    )


def assert_same_scores(ours: dict, theirs: dict, tasks: list[str]) -> int:
    """Every request's log-likelihood within TOLERANCE, same is_greedy, same acc where the
    top two choices differ by more than twice TOLERANCE (a random-weight model can score two
    letters alike); returns the number of requests compared."""
    compared = ties = 0
    for task in tasks:
        a_samples = sorted(theirs["samples"][task], key=lambda s: s["doc_id"])
        b_samples = sorted(ours["samples"][task], key=lambda s: s["doc_id"])
        assert [s["doc_id"] for s in a_samples] == [s["doc_id"] for s in b_samples]
        task_ties = 0
        for a, b in zip(a_samples, b_samples, strict=True):
            assert a["arguments"] == b["arguments"]
            for (ll_a, greedy_a), (ll_b, greedy_b) in zip(
                (r[0] for r in a["resps"]), (r[0] for r in b["resps"]), strict=True
            ):
                assert abs(ll_a - ll_b) <= TOLERANCE, (task, a["doc_id"], ll_a, ll_b)
                assert greedy_a == greedy_b, (task, a["doc_id"])
                compared += 1
            top = sorted(r[0][0] for r in a["resps"])
            if top[-1] - top[-2] <= 2 * TOLERANCE:
                task_ties += 1
                continue
            assert a["acc"] == b["acc"], (task, a["doc_id"])
        if not task_ties:
            assert ours["results"][task]["acc,none"] == theirs["results"][task]["acc,none"]
        ties += task_ties
    print(f"{compared} requests compared; {ties} questions within {2 * TOLERANCE} of a tie")
    assert ties <= 3
    return compared


def common_prefix_len(sequences: list[list[int]]) -> int:
    """Positions at which all sequences hold the same token, from the start."""
    n = 0
    for column in zip(*sequences, strict=False):
        if len(set(column)) > 1:
            break
        n += 1
    return n


def test_equals_hf_with_one_prefix_pass_per_subject(cmmlu_hf_run: HFRun, cmmlu_dir: Path) -> None:
    """CMMLU 5-shot, three whole subjects on the random-weight Llama and a slice on
    SmolLM2: the same scores as ``hf`` (batch 1, fp32), each subject's instruction + shots
    run once, the rest of every question once."""
    from langadapt_tasks.backend.hf import SharedPrefixHFLM

    hf = cmmlu_hf_run.lm
    # The fixture's fp32 model and tokenizer, shared: only the scoring differs.
    lm = SharedPrefixHFLM(pretrained=hf.model, tokenizer=hf.tokenizer, batch_size=8)
    tasks = [f"cmmlu_langadapt_{s}" for s in cmmlu_hf_run.rows]
    metadata = {"cmmlu_dir": str(cmmlu_dir), "pretrained": str(cmmlu_hf_run.model_dir)}
    limit = None if cmmlu_hf_run.whole else max(cmmlu_hf_run.rows.values())
    meter = TokenMeter(lm.model)
    try:
        out = evaluate(lm, tasks, metadata, limit=limit)
    finally:
        meter.close()
    compared = assert_same_scores(out, cmmlu_hf_run.out, tasks)
    assert compared == 4 * sum(cmmlu_hf_run.rows.values())

    # Expected from the logged requests alone: hf's input of a request is its context +
    # continuation minus the last token (one-letter choices: the context; the four choices
    # of a question share it); a subject's prefix is the common prefix of its inputs.
    subjects: list[set[tuple[int, ...]]] = []
    for task in tasks:
        inputs = set()
        for sample in cmmlu_hf_run.out["samples"][task]:
            for context, continuation in sample["arguments"]:
                ctx, cont = hf._encode_pair(context, continuation)
                inputs.add(tuple(ctx + cont)[:-1])
        subjects.append(inputs)
    prefixes = [common_prefix_len([list(t) for t in inputs]) for inputs in subjects]
    assert sorted(meter.uncached) == sorted(prefixes)  # one prefix pass per subject
    hf_tokens = sum(len(t) for inputs in subjects for t in inputs)
    assert hf_tokens == sum(len(ids) for ids in cmmlu_hf_run.seen)  # what hf ran
    expected = sum(
        p + sum(len(t) - p for t in inputs) for p, inputs in zip(prefixes, subjects, strict=True)
    )
    assert meter.tokens == expected
    print(f"tokens through the model: hf {hf_tokens}, langadapt-hf {meter.tokens}")


# --- the smaller checks: a few questions each -------------------------------------------

LMEVAL_TASK = "cmmlu_langadapt_lmeval_philosophy"  # " A": a space before the letter


# On the tiny random Llama (SmolLM2's tokenizer): protocol checks; SmolLM2 itself runs the
# slice of test_equals_hf_with_one_prefix_pass_per_subject.
@pytest.fixture(scope="module")
def hf_lm(tiny_llama_dir: Path) -> Any:
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=str(tiny_llama_dir), batch_size=1, device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def metadata(cmmlu_dir: Path, tiny_llama_dir: Path) -> dict[str, str]:
    return {"cmmlu_dir": str(cmmlu_dir), "pretrained": str(tiny_llama_dir)}


def test_groups_by_longest_shared_prefix() -> None:
    """Sorted inputs join a group while their common prefix (capped at each one's first
    scored position) stays long enough; the rest are left to hf."""
    shots = tuple(range(100, 140))  # 40 shared tokens
    a, b, c = (*shots, 1, 2, 3), (*shots, 1, 2, 4), (*shots, 5)
    other = (7,) * 45
    starts = {a: len(a) - 1, b: len(b) - 1, c: len(c) - 1, other: len(other) - 1}
    groups, alone = group_by_prefix(starts, min_tokens=32, min_fraction=0.5)
    assert [(g.prefix_len, g.inputs) for g in groups] == [(40, [a, b, c])]
    assert alone == [other]
    # A prefix under the minimum, or under the fraction of the shortest input: no group.
    groups, alone = group_by_prefix(starts, min_tokens=41, min_fraction=0.0)
    assert [(g.prefix_len, g.inputs) for g in groups] == [(42, [a, b])]
    assert alone == [other, c]
    assert group_by_prefix(starts, min_tokens=43, min_fraction=0.0)[0] == []
    assert group_by_prefix(starts, min_tokens=1, min_fraction=0.99)[0] == []
    # The prefix never covers a scored position: a's first scored token is its 10th.
    groups, _ = group_by_prefix({**starts, a: 10}, min_tokens=5, min_fraction=0.0)
    assert groups[0].prefix_len == 10


def compare_with_hf(lm: Any, hf_lm: Any, metadata: dict, limit: int, requests: int) -> TokenMeter:
    """Run LMEVAL_TASK through ``lm`` (its forward passes metered) and ``hf``: the same scores
    on ``requests`` requests; returns the meter."""
    meter = TokenMeter(lm.model)
    try:
        ours = evaluate(lm, [LMEVAL_TASK], metadata, limit=limit)
    finally:
        meter.close()
    theirs = evaluate(hf_lm, [LMEVAL_TASK], metadata, limit=limit)
    assert assert_same_scores(ours, theirs, [LMEVAL_TASK]) == requests
    return meter


def test_space_before_letter_task_equals_hf(hf_lm: Any, metadata: dict[str, str]) -> None:
    """lm-eval's CMMLU format (" A", another token boundary), 5-shot, three questions."""
    from langadapt_tasks.backend.hf import SharedPrefixHFLM

    lm = SharedPrefixHFLM(pretrained=hf_lm.model, tokenizer=hf_lm.tokenizer, batch_size=2)
    meter = compare_with_hf(lm, hf_lm, metadata, limit=3, requests=12)
    assert len(meter.uncached) == 1  # the three questions' shared prefix, once


def test_batch_size_zero_is_one_batch_as_in_hf(hf_lm: Any, metadata: dict[str, str]) -> None:
    """``--batch_size 0`` is hf's "no limit" (one batch of everything); issue 20 item 9: it
    crashed with ``range() arg 3 must not be zero``."""
    from langadapt_tasks.backend.hf import SharedPrefixHFLM

    lm = SharedPrefixHFLM(pretrained=hf_lm.model, tokenizer=hf_lm.tokenizer, batch_size="0")
    meter = compare_with_hf(lm, hf_lm, metadata, limit=3, requests=12)
    assert len(meter.uncached) == 1  # the shared prefix, once; the three suffixes in one batch


def test_shared_prefix_off_scores_every_request_as_hf(hf_lm: Any, metadata: dict[str, str]) -> None:
    """``shared_prefix=False`` (the study's setting for an adapter's runs where no prefix is
    shared, kept only for the adapter check): no KV cache reused, one whole input per pass."""
    from langadapt_tasks.backend.hf import SharedPrefixHFLM

    lm = SharedPrefixHFLM(
        pretrained=hf_lm.model, tokenizer=hf_lm.tokenizer, batch_size=1, shared_prefix="False"
    )
    meter = compare_with_hf(lm, hf_lm, metadata, limit=2, requests=8)
    assert len(meter.uncached) == 2  # hf's one pass per question (the 4 letters share it)


def test_a_language_specs_multiple_choice_task_equals_hf(hf_lm: Any) -> None:
    """The Turkish spec's multiple-choice task (TurkishMMLU, five choices " A"-" E", 5-shot
    from dev) over the made-up fixture: two whole subjects, the same scores as hf."""
    from langadapt_tasks.backend.hf import SharedPrefixHFLM
    from langadapt_tasks.languages.spec import builtin_specs

    assert builtin_specs()["tr"].mc_task == "turkishmmlu_langadapt"
    fixture = Path(__file__).resolve().parent / "fixtures" / "turkishmmlu"
    tasks = ["turkishmmlu_langadapt_history", "turkishmmlu_langadapt_biology"]
    metadata = {"turkishmmlu_dir": str(fixture)}
    lm = SharedPrefixHFLM(pretrained=hf_lm.model, tokenizer=hf_lm.tokenizer, batch_size=2)
    meter = TokenMeter(lm.model)
    try:
        ours = evaluate(lm, tasks, metadata)
    finally:
        meter.close()
    theirs = evaluate(hf_lm, tasks, metadata)
    questions = sum(
        len(json.loads((fixture / "test" / f"TurkishMMLU_{name}.json").read_text("utf-8")))
        for name in ("History", "Biology")
    )
    assert assert_same_scores(ours, theirs, tasks) == 5 * questions
    assert len(meter.uncached) == len(tasks)  # each subject's prefix, once


def test_lora_adapter_equals_hf_with_the_same_adapter(
    tiny_llama_dir: Path, lora_adapter: Path, metadata: dict[str, str]
) -> None:
    """``peft=`` through the model-args string of ``langadapt-hf`` (found by name) and of
    ``hf``: the same scores, and not the base model's (the adapter changes them)."""
    import lm_eval

    args = f"pretrained={tiny_llama_dir},peft={lora_adapter},dtype=float32,device=cpu"
    tasks = ["cmmlu_langadapt_philosophy"]

    def run(model: str, batch_size: int) -> dict:
        return lm_eval.simple_evaluate(
            model=model,
            model_args=args,
            batch_size=batch_size,
            tasks=tasks,
            task_manager=task_manager(**metadata),
            log_samples=True,
            limit=2,
        )

    ours, theirs = run("langadapt-hf", 2), run("hf", 1)
    assert assert_same_scores(ours, theirs, tasks) == 8
    from lm_eval.models.huggingface import HFLM

    from langadapt_tasks.backend.hf import SharedPrefixHFLM

    base = SharedPrefixHFLM(pretrained=str(tiny_llama_dir), device="cpu", dtype="float32")
    assert not isinstance(base.model, type(HFLM))  # a plain transformers model
    plain = evaluate(base, tasks, metadata, limit=2)
    lora = [r[0][0] for s in ours["samples"][tasks[0]] for r in s["resps"]]
    without = [r[0][0] for s in plain["samples"][tasks[0]] for r in s["resps"]]
    assert max(abs(x - y) for x, y in zip(lora, without, strict=True)) > 1e-3


def test_an_adapter_that_changes_nothing_is_refused(tiny_llama_dir: Path, tmp_path: Path) -> None:
    """PEFT's default LoRA initialisation (B = 0) adds nothing: evaluating it would report the
    base model's scores as the adapter's. ``check_adapter=False`` lets it load."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from langadapt_tasks.backend.hf import SharedPrefixHFLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(tmp_path)
    args = {"pretrained": str(tiny_llama_dir), "peft": str(tmp_path), "device": "cpu"}
    with pytest.raises(ValueError, match=r"does not change the model's outputs"):
        SharedPrefixHFLM(**args)
    assert SharedPrefixHFLM(**args, check_adapter=False).peft == str(tmp_path)


def test_auto_batch_size_equals_hf(
    hf_lm: Any, metadata: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``batch_size=auto`` (detected as hf detects it, up to max_batch_size), 0-shot with a
    short instruction as the prefix (the thresholds are model args)."""
    from langadapt_tasks.backend.hf import SharedPrefixHFLM

    lm = SharedPrefixHFLM(
        pretrained=hf_lm.model,
        tokenizer=hf_lm.tokenizer,
        batch_size="auto",
        max_batch_size=2,
        prefix_min_tokens=8,
        prefix_min_fraction=0.1,
    )
    tasks = ["cmmlu_langadapt_philosophy"]
    meter = TokenMeter(lm.model)
    try:
        ours = evaluate(lm, tasks, metadata, limit=3, num_fewshot=0)
    finally:
        meter.close()
    assert "Determined largest batch size: 2" in capsys.readouterr().out
    theirs = evaluate(hf_lm, tasks, metadata, limit=3, num_fewshot=0)
    assert assert_same_scores(ours, theirs, tasks) == 12
    # The detection's passes have no cache either: the prefix pass is the shortest.
    assert min(meter.uncached) < 64


def test_bad_thresholds_are_refused(hf_lm: Any) -> None:
    from langadapt_tasks.backend.hf import SharedPrefixHFLM

    with pytest.raises(ValueError, match="prefix_min_fraction"):
        SharedPrefixHFLM(pretrained=hf_lm.model, tokenizer=hf_lm.tokenizer, prefix_min_fraction=2)


def test_pth_hook_registers_the_model_when_lm_eval_imports_its_registry(tmp_path: Path) -> None:
    """The .pth in a site directory: nothing of lm_eval or torch at start-up; lm-eval's
    registry then knows langadapt-hf and still all of its own models."""
    shutil.copy(PTH, tmp_path / PTH.name)
    shutil.copy(autoregister.__file__, tmp_path / "langadapt_lm_eval_hook.py")  # as setup.py
    code = f"""
import site, sys
site.addsitedir({str(tmp_path)!r})
loaded = {{"lm_eval", "torch", "langadapt_tasks"}} & set(sys.modules)
assert not loaded, f"imported at start-up: {{loaded}}"
from lm_eval.api.registry import get_model
cls = get_model("langadapt-hf")
assert cls.__name__ == "SharedPrefixHFLM", cls
assert get_model("hf").__name__ == "HFLM"
import langadapt_tasks.backend.hf as backend
assert get_model("langadapt-hf") is backend.SharedPrefixHFLM
print("ok")
"""
    proc = run_cli([sys.executable, "-c", code], timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
    # Without langadapt importable (isolated, no site-packages) the .pth line raises nothing.
    line = PTH.read_text(encoding="utf-8").strip()
    assert len(PTH.read_text(encoding="utf-8").splitlines()) == 1 and line.startswith("import ")
    proc = run_cli([sys.executable, "-I", "-S", "-c", line], cwd=tmp_path)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr


def test_lm_eval_cli_finds_the_backend(
    tiny_llama_dir: Path, cmmlu_dir: Path, tmp_path: Path
) -> None:
    """The stock ``lm_eval`` CLI of an installed langadapt (the .pth in site-packages), in a
    process of its own."""
    args = [lm_eval_bin(), "--model", "langadapt-hf"]
    args += ["--model_args", f"pretrained={tiny_llama_dir},dtype=float32", "--device", "cpu"]
    args += ["--tasks", "cmmlu_langadapt_philosophy", "--limit", "2", "--batch_size", "2"]
    args += ["--metadata", json.dumps({"cmmlu_dir": str(cmmlu_dir)})]
    args += ["--output_path", str(tmp_path / "out")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = run_cli(args, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "langadapt-hf (" in proc.stdout  # lm-eval's run summary names the model
    assert "|philosophy|" in proc.stdout.replace(" ", "")  # the task's row (its alias)


def test_a_failed_registration_is_said_when_lm_eval_is_asked_for_the_model() -> None:
    """The hook never raises at start-up; when registration fails, the first lookup of
    langadapt-hf warns with the cause (and lm-eval's own error follows), other models not."""
    import types

    class BrokenRegistry:
        def __contains__(self, name: str) -> bool:
            return False

        def register(self, *names: str, target: str) -> None:
            raise RuntimeError("registry API changed")

    asked: list[str] = []
    registry = types.ModuleType("fake_registry")
    registry.model_registry = BrokenRegistry()
    registry.get_model = lambda name: asked.append(name) or name
    autoregister.register(registry)  # raises nothing
    with pytest.warns(
        RuntimeWarning,
        match=r"langadapt-hf could not be registered .*"
        r"RuntimeError: registry API changed",
    ):
        assert registry.get_model("langadapt-hf") == "langadapt-hf"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert registry.get_model("hf") == "hf"
    assert asked == ["langadapt-hf", "hf"]
