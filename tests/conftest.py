"""Shared fixtures: the embedded SmolLM2 model, the local data sets, the lm_eval CLI."""

from __future__ import annotations

import csv
import itertools
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from in_process import show
from judge_server import JudgeServer, Reply

REPO = Path(__file__).resolve().parent.parent
# Public data sets, kept beside the checkout (see README, "Data sources").
DATA = Path(os.environ.get("LANGADAPT_TEST_DATA", REPO.parent / "shared" / "data")).resolve()


def _data(sub: str) -> Path:
    path = DATA / sub
    if not path.exists():
        pytest.fail(f"test data {path} not found; set LANGADAPT_TEST_DATA to the data directory")
    return path


def pytest_configure(config: pytest.Config) -> None:
    """Hugging Face caches of this test run go to a temporary folder, not ~/.cache (set
    before datasets is imported: it reads the variables once). Under pytest-xdist (``make
    test`` runs a worker per core) each worker's torch, and what it starts, gets its share
    of the cores instead of all of them."""
    if "HF_DATASETS_CACHE" not in os.environ:
        os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="langadapt-hf-datasets-")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))


# Under ``pytest -n N --dist loadgroup`` (``make test``) the tests that share an expensive
# fixture run on one worker, so that it is built once: by fixture, then by module.
SHARED_FIXTURES = ("cmmlu_hf_run", "cli_runs")
SHARED_MODULES = ("test_cmmlu_tasks", "test_mtbench_lm_eval", "test_train_run")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        fixture = next((f for f in SHARED_FIXTURES if f in names), None)
        module = item.module.__name__ if item.module else ""
        if fixture == "cmmlu_hf_run":  # one group per model: the two runs are independent
            group = f"{fixture}-{item.callspec.params[fixture]}"
        elif fixture:
            group = fixture
        elif module in SHARED_MODULES:
            group = module
        else:
            continue
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def cmmlu_dir() -> Path:
    return _data("cmmlu")


@pytest.fixture(scope="session")
def mt_bench_dir() -> Path:
    return _data("mt_bench")


@pytest.fixture(scope="session")
def sft_dir() -> Path:
    return _data("sft")


def write_mmlu(root: Path, subjects: list[str], test_rows: int = 2) -> Path:
    """A made-up MMLU in its CSV release's layout (``dev/<subject>_dev.csv``: five shots,
    ``test/<subject>_test.csv``; no header; ``question,A,B,C,D,answer``), with what real rows
    have: commas and quotes in a question, a number as a choice, spaces around a question."""
    for subject, (split, n) in itertools.product(subjects, (("dev", 5), ("test", test_rows))):
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / f"{subject}_{split}.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            for i in range(n):
                words = subject.replace("_", " ")
                question = f' Made-up {split} question {i} on {words}, "quoted", and so on? '
                choices = [f"{words} {letter}{i}" for letter in "ABC"] + [f"0.{i}0"]
                writer.writerow([question, *choices, "ABCD"[(i + len(subject)) % 4]])
    return root


@pytest.fixture(scope="session")
def mmlu_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A made-up copy of every MMLU subject (lm-eval's list), in the CSV release's layout."""
    from langadapt_tasks.benchmarks.mmlu_subjects import SUBJECTS

    return write_mmlu(tmp_path_factory.mktemp("mmlu"), list(SUBJECTS))


def _run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of this test run that every pytest-xdist worker of it shares."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def shared_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded models, converted once per test run (shared by the xdist workers);
    every test's home links here."""
    folder = _run_root(tmp_path_factory) / "models"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(autouse=True)
def langadapt_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, shared_models: Path
) -> Path:
    """A fresh ``LANGADAPT_HOME`` per test (caches, downloads, verdicts never leak between
    tests or into the user's ~/.cache); only the converted models are shared."""
    home = tmp_path_factory.mktemp("langadapt_home")
    (home / "models").symlink_to(shared_models, target_is_directory=True)
    monkeypatch.setenv("LANGADAPT_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def smollm2_dir(shared_models: Path) -> Path:
    """SmolLM2-135M-Instruct as a transformers directory (converted once per test run; a
    second worker waits for the first's conversion and reuses it)."""
    from filelock import FileLock

    from langadapt_tasks.study.models import EMBEDDED, materialize

    # The folder LANGADAPT_HOME/models/<name> links to, so `langadapt models` finds it too.
    with FileLock(str(shared_models.parent / "models.lock")):
        return materialize("smollm2", shared_models / EMBEDDED["smollm2"].name)


@pytest.fixture
def cmmlu_env(cmmlu_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment pointing langadapt at the local CMMLU copy (also set in os.environ)."""
    monkeypatch.setenv("LANGADAPT_CMMLU_DIR", str(cmmlu_dir))
    return dict(os.environ)


def task_manager(model_args: str = "", **metadata: object):
    """lm-eval's TaskManager over langadapt's tasks only, with the model args in the tasks'
    metadata as ``simple_evaluate`` puts them (indexing all of lm-eval's tasks is slow)."""
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import simple_parse_args_string

    from langadapt_tasks.paths import task_dir

    meta = {**simple_parse_args_string(model_args), **metadata}
    return TaskManager(include_path=str(task_dir()), include_defaults=False, metadata=meta)


# Three small whole CMMLU subjects (the smallest by 5-shot prompt tokens: 334 questions,
# about 204k tokens) and their test rows in CMMLU's CSV files.
CMMLU_WHOLE_ROWS = {"philosophy": 105, "college_engineering_hydrology": 106, "logical": 123}
# The slice the real SmolLM2 checkpoint runs: the first questions of one subject.
CMMLU_SLICE = ("philosophy", 10)


@pytest.fixture(scope="session")
def tiny_llama_dir(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Llama (seeded, fp32, 2 layers, hidden size 16) with SmolLM2's own
    tokenizer, vocabulary and chat template, saved as an ordinary model folder: the protocol
    checks (prompts, argmax, log-likelihoods, forward passes) hold or fail on any causal LM
    with the same tokenizer, and its forward pass costs a few percent of SmolLM2's."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    real = LlamaConfig.from_pretrained(smollm2_dir)
    config = LlamaConfig(
        vocab_size=real.vocab_size,
        hidden_size=16,  # the LM head over SmolLM2's 49,152 tokens is most of a pass
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        initializer_range=0.1,  # letters' logits far enough apart: few near-ties
        max_position_embeddings=real.max_position_embeddings,
        rope_parameters=real.rope_parameters,
        bos_token_id=real.bos_token_id,
        eos_token_id=real.eos_token_id,
        pad_token_id=real.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    LlamaForCausalLM(config).to(torch.float32).save_pretrained(out)
    AutoTokenizer.from_pretrained(smollm2_dir).save_pretrained(out)
    return out


@dataclass
class HFRun:
    """One ``lm_eval.simple_evaluate`` run of the ``hf`` backend, with its samples and the
    last-position logits of every batch-of-one forward pass it made (keyed by input ids)."""

    out: dict[str, Any]
    lm: Any
    seen: dict[tuple[int, ...], Any]
    passes: list[int]  # the batch size of each forward pass, in order
    model_dir: Path
    rows: dict[str, int]  # subject -> the questions run (its first rows)

    @property
    def whole(self) -> bool:
        return self.rows == CMMLU_WHOLE_ROWS


def record_forward_passes(model) -> tuple[dict[tuple[int, ...], Any], list[int], Any]:
    """Input ids -> last-position logits of every batch-of-one forward pass of ``model``,
    and the batch size of every pass."""
    seen: dict[tuple[int, ...], Any] = {}
    passes: list[int] = []

    def hook(module, args, kwargs, output) -> None:
        ids = args[0] if args else kwargs["input_ids"]
        passes.append(ids.shape[0])
        if ids.shape[0] == 1:
            seen[tuple(ids[0].tolist())] = output.logits[0, -1, :].detach().clone()

    return seen, passes, model.register_forward_hook(hook, with_kwargs=True)


@pytest.fixture(scope="session", params=["tiny-whole", "smollm2-slice"])
def cmmlu_hf_run(request: pytest.FixtureRequest, cmmlu_dir: Path) -> HFRun:
    """``cmmlu_langadapt_<subject>`` (5-shot), ``hf`` backend, batch 1, fp32: the runs that
    CMMLU's reference and the shared-prefix backend are compared with. ``tiny-whole``: the
    three whole subjects on the random-weight Llama; ``smollm2-slice``: the first 10
    questions of one subject on the real SmolLM2 checkpoint."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    if request.param == "tiny-whole":
        model_dir, rows = request.getfixturevalue("tiny_llama_dir"), dict(CMMLU_WHOLE_ROWS)
    else:
        model_dir, rows = request.getfixturevalue("smollm2_dir"), dict([CMMLU_SLICE])
    limit = None if rows == CMMLU_WHOLE_ROWS else max(rows.values())
    lm = HFLM(pretrained=str(model_dir), batch_size=1, device="cpu", dtype="float32")
    seen, passes, handle = record_forward_passes(lm.model)
    metadata = {"cmmlu_dir": str(cmmlu_dir), "pretrained": str(model_dir)}
    try:
        out = lm_eval.simple_evaluate(
            model=lm,
            tasks=[f"cmmlu_langadapt_{s}" for s in rows],
            task_manager=task_manager(**metadata),
            log_samples=True,
            limit=limit,
        )
    finally:
        handle.remove()
    return HFRun(out=out, lm=lm, seen=seen, passes=passes, model_dir=model_dir, rows=rows)


def lm_eval_bin() -> str:
    """The real ``lm_eval`` console script of this interpreter's environment."""
    candidate = Path(sys.executable).parent / "lm_eval"
    return str(candidate) if candidate.exists() else "lm_eval"


def run_cli(
    args: list[str], env: dict[str, str] | None = None, timeout: int = 900, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command, returning its output; the output is shown when a test fails."""
    proc = subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    show(proc)
    return proc


# The tasks of the two shared CLI runs: CMMLU (the whole group for the adapter, Humanities
# for the base model) and one judged MT-Bench category per shipped language.
CLI_MTBENCH_TASKS = "mtbench_langadapt_zh_writing,mtbench_langadapt_tr_math"
CLI_ADAPTER = "zh-r4"


@pytest.fixture(scope="session")
def lora_adapter(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter of the tiny Llama (r4 on q/v) with non-zero weights, so it changes
    the outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    config = LoraConfig(
        r=4,
        lora_alpha=16,
        target_modules=["q_proj", "v_proj"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    out = tmp_path_factory.mktemp("adapter") / CLI_ADAPTER
    get_peft_model(model, config).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def cli_runs(
    tiny_llama_dir: Path,
    lora_adapter: Path,
    cmmlu_dir: Path,
    mt_bench_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Path]:
    """Two ``lm_eval`` command lines, shared by the CLI, metadata and report tests: ``lora``
    (the tiny Llama + the adapter; the whole ``cmmlu_langadapt`` group from
    ``LANGADAPT_CMMLU_DIR``), a real ``lm_eval`` process, and ``base`` (the tiny Llama; CMMLU
    Humanities with its data folder given only by ``--metadata cmmlu_dir``), the same CLI in
    this process; both with MT-Bench zh writing and tr math judged by a loopback server
    (replies 4, 4, 2, ...), ``--limit 1``, 0-shot, 8 new tokens, samples logged. Values: the
    ``--output_path`` folders; the commands' stdout is saved beside them as
    ``<label>.stdout.txt``."""
    from in_process import run_here

    root = tmp_path_factory.mktemp("cli_runs")
    server = JudgeServer().start()
    server.responder = lambda body, n: Reply("4" if n % 3 else "2")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LANGADAPT_"))}
    env.update(
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=server.base_url,
        LANGADAPT_MTBENCH_DIR=str(mt_bench_dir),
        LANGADAPT_JUDGE_CACHE=str(root / "cache.sqlite"),
        # A session fixture runs outside the per-test homes: its own, never ~/.cache.
        LANGADAPT_HOME=str(root / "home"),
        XDG_CACHE_HOME=str(root / "cache"),
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    plans = {
        "base": (
            f"pretrained={tiny_llama_dir}",
            f"cmmlu_langadapt_humanities,{CLI_MTBENCH_TASKS}",
            ["--metadata", json.dumps({"cmmlu_dir": str(cmmlu_dir)})],
            {},
        ),
        "lora": (
            f"pretrained={tiny_llama_dir},peft={lora_adapter}",
            f"cmmlu_langadapt,{CLI_MTBENCH_TASKS}",
            [],
            {"LANGADAPT_CMMLU_DIR": str(cmmlu_dir)},
        ),
    }
    out: dict[str, Path] = {}
    try:
        for label, (model_args, tasks, extra, extra_env) in plans.items():
            out[label] = root / label
            args = [lm_eval_bin(), "--model", "hf", "--model_args", model_args]
            args += ["--tasks", tasks, "--limit", "1", "--num_fewshot", "0", "--batch_size", "1"]
            args += ["--gen_kwargs", "max_gen_toks=8", "--log_samples"]
            args += ["--output_path", str(out[label]), *extra]
            runner = run_cli if label == "lora" else run_here
            proc = runner(args, env={**env, **extra_env}, timeout=600)
            assert proc.returncode == 0, proc.stderr[-3000:]
            (root / f"{label}.stdout.txt").write_text(proc.stdout, encoding="utf-8")
    finally:
        server.stop()
    return out
