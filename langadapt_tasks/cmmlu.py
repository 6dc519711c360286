"""CMMLU data for the ``cmmlu_langadapt`` tasks: loading, validation, prompts.

Where the data comes from, in order:

1. ``--metadata '{"cmmlu_dir": "DIR"}'`` (or ``metadata=`` in the TaskManager),
2. the ``LANGADAPT_CMMLU_DIR`` environment variable,
3. the Hugging Face Hub: the Parquet export of ``haonan-li/cmmlu``. The Hub
   repository itself needs a loading script, which ``datasets>=4`` no longer
   runs, so the Parquet branch (``refs/convert/parquet``) is read directly.

A local directory has CMMLU's GitHub layout: ``dev/<subject>.csv`` and
``test/<subject>.csv`` with columns ``,Question,A,B,C,D,Answer``.

The ``cmmlu_langadapt`` tasks follow CMMLU's own evaluation code
(``src/mp_utils.py`` and ``src/hf_causal_model.py`` in haonan-li/CMMLU): per
question, the longest shots are dropped while the prompt would pass 2048
tokens of the model's tokenizer. The loader counts those tokens
(``shot_tokens`` on the dev rows, ``shot_budget`` on the test rows) and
:class:`LongestShotDropping` applies the rule when lm-eval builds the prompt.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
from pathlib import Path
from typing import Any

import datasets
from lm_eval.api.samplers import FirstNSampler
from lm_eval.api.task import ConfigurableTask

from langadapt_tasks.cmmlu_subjects import SUBJECTS
from langadapt_tasks.config_files import read_text
from langadapt_tasks.paths import local_dir
from langadapt_tasks.yaml_gen import PROMPT_HEADER

ENV_DIR = "LANGADAPT_CMMLU_DIR"
METADATA_DIR = "cmmlu_dir"
METADATA_TOKENIZER = "cmmlu_tokenizer"
METADATA_MAX_LENGTH = "cmmlu_max_length"
MAX_LENGTH = 2048  # CMMLU's --max_length default
HUB_REPO = "haonan-li/cmmlu"
HUB_FILES = "hf://datasets/haonan-li/cmmlu@~parquet/{subject}/{split}/*.parquet"
SPLITS = ("test", "dev")
CHOICES = ("A", "B", "C", "D")
FIELDS = ("Question", *CHOICES, "Answer")


_log = logging.getLogger(__name__)


class _QuietCustomDatasetHint(logging.Filter):
    """Drop lm-eval's per-task hint about custom datasets (67 identical lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Custom kwargs can be passed to `--metadata`" not in record.getMessage()


logging.getLogger("lm_eval.api.task").addFilter(_QuietCustomDatasetHint())


class CMMLUDataError(ValueError):
    """The CMMLU data could not be found or a row is malformed."""


def validate_row(row: dict[str, Any], where: str) -> dict[str, str]:
    """Return the row's six fields, or raise naming ``where`` (file and row).

    The text is kept as written (CMMLU's own code reads it with pandas and
    strips nothing); only the answer letter is compared without spaces.
    """
    missing = [f for f in FIELDS if f not in row]
    if missing:
        raise CMMLUDataError(f"{where}: missing column(s) {missing}; expected {list(FIELDS)}")
    out = {f: "" if row[f] is None else str(row[f]) for f in FIELDS}
    empty = [f for f in FIELDS if not out[f].strip()]
    if empty:
        raise CMMLUDataError(
            f"{where}: empty field(s) {empty}; every question needs a text, "
            "four options and an answer"
        )
    out["Answer"] = out["Answer"].strip()
    if out["Answer"] not in CHOICES:
        raise CMMLUDataError(f"{where}: answer {out['Answer']!r} is not one of A, B, C, D")
    return out


def _swallowed_record(fields: list[str], width: int) -> int | None:
    """Index of a line inside a field that is a whole record on its own, if any.

    An unclosed quote makes the csv module read on, across line breaks, until
    the next quote: the lines it swallows are complete records of their own
    (as many cells as the header). A genuine multi-line field has no such line.
    """
    for field in fields:
        for offset, piece in enumerate(field.splitlines()[1:], 1):
            if len(next(csv.reader([piece]), [])) == width:
                return offset
    return None


def read_csv(path: Path) -> list[dict[str, str]]:
    """Read one CMMLU CSV (GitHub layout), validating every row.

    Every record becomes a question or an error naming the file and line:
    a field running over lines that are whole records themselves is an
    unclosed quote, and so is a quote still open at the end of the file.
    """
    text = read_text(path, CMMLUDataError)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    first = 1  # physical line the next record starts on
    try:
        header = next(reader, None)
        if header is None:
            raise CMMLUDataError(f"{path}: empty file; expected the header ,{','.join(FIELDS)}")
        rows = []
        first = reader.line_num + 1
        for cells in reader:
            where = f"{path}, line {first}"
            swallowed = _swallowed_record(cells, len(header))
            if swallowed is not None:
                raise CMMLUDataError(
                    f"{where}: unclosed quote: a field runs on over lines {first + 1}-"
                    f"{reader.line_num}, which are records of their own (line "
                    f"{first + swallowed}); close or double the quote"
                )
            first = reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue  # a blank line is not a record
            if len(cells) > len(header):
                raise CMMLUDataError(f"{where}: {len(cells)} cells, expected {len(header)}")
            row = dict(zip(header, cells, strict=False))
            row.update({f: None for f in header[len(cells) :]})
            rows.append(validate_row(row, where))
    except csv.Error as err:  # strict mode: a stray quote, or one open at the end of file
        raise CMMLUDataError(
            f"{path}, line {first}: unclosed or stray quote in the record starting here "
            f"({err} at line {reader.line_num}); close or double the quote"
        ) from err
    if not rows:
        raise CMMLUDataError(f"{path}: no questions in file")
    return rows


def _from_dir(root: Path, subject: str) -> datasets.DatasetDict:
    parts = {}
    for split in SPLITS:
        path = root / split / f"{subject}.csv"
        if not path.is_file():
            raise CMMLUDataError(
                f"{path} not found: the CMMLU directory {root} must hold dev/<subject>.csv "
                "and test/<subject>.csv as in CMMLU's GitHub repository (data/)"
            )
        parts[split] = datasets.Dataset.from_list(read_csv(path))
    return datasets.DatasetDict(parts)


def _from_hub(subject: str) -> datasets.DatasetDict:
    files = {split: HUB_FILES.format(subject=subject, split=split) for split in SPLITS}
    loaded = datasets.load_dataset("parquet", data_files=files)
    parts = {}
    for split in SPLITS:
        rows = [validate_row(r, f"{files[split]}, row {i}") for i, r in enumerate(loaded[split])]
        parts[split] = datasets.Dataset.from_list(rows)
    return datasets.DatasetDict(parts)


def data_dir(metadata: dict[str, Any] | None = None) -> Path | None:
    """The local CMMLU directory chosen by task metadata or environment, if any."""
    return local_dir(metadata, METADATA_DIR, ENV_DIR, CMMLUDataError)


@functools.cache
def _load(root: Path | None, subject: str) -> datasets.DatasetDict:
    if root is not None:
        return _from_dir(root, subject)
    try:
        return _from_hub(subject)
    except Exception as err:  # offline, gated, renamed: all end the same way
        raise CMMLUDataError(
            f"CMMLU subject {subject!r} could not be loaded from the Hub ({HUB_REPO}: "
            f"{type(err).__name__}: {err}). Point at a local copy of CMMLU's data/ directory "
            f"instead, with the environment variable {ENV_DIR}=DIR or "
            f'lm_eval --metadata \'{{"{METADATA_DIR}": "DIR"}}\'.'
        ) from err


def load_subject(cmmlu_subject: str, **metadata: Any) -> datasets.DatasetDict:
    """lm-eval ``custom_dataset`` hook: the test and dev splits of one subject.

    lm-eval passes the task's metadata (``--metadata`` and the model args) as
    keyword arguments; only ``cmmlu_dir`` is read here.
    """
    if cmmlu_subject not in SUBJECTS:
        raise CMMLUDataError(f"unknown CMMLU subject {cmmlu_subject!r}")
    return _load(data_dir(metadata), cmmlu_subject)


def load_protocol_subject(cmmlu_subject: str, **metadata: Any) -> datasets.DatasetDict:
    """lm-eval ``custom_dataset`` hook for CMMLU's own protocol.

    As :func:`load_subject`, plus the token counts of CMMLU's
    shot-dropping rule, made with the tokenizer named by ``cmmlu_tokenizer``,
    else the model args' ``tokenizer`` or ``pretrained``. Without one (a model
    object handed to ``simple_evaluate``) no shot is dropped, as in CMMLU's
    code without a tokenizer, and a warning says so.
    """
    parts = load_subject(cmmlu_subject, **metadata)
    tokenizer = _tokenizer_for(metadata)
    max_length = _max_length(metadata)
    if tokenizer is None:
        _log.warning(
            "cmmlu_langadapt: no tokenizer in the model args (pretrained=/tokenizer=) or "
            "metadata %r: CMMLU's rule of dropping the longest shot past %d tokens is off",
            METADATA_TOKENIZER,
            max_length,
        )
    header = PROMPT_HEADER.format(subject=SUBJECTS[cmmlu_subject].name_zh)
    count = (lambda text: len(tokenizer.encode(text))) if tokenizer is not None else None
    dev = [{**row, "shot_tokens": count(shot_text(row)) if count else None} for row in parts["dev"]]
    test = [
        {
            **row,
            # gen_prompt: len(encode(header) + encode(question)) against max_length
            "shot_budget": max_length - count(header) - count(question_text(row))
            if count
            else None,
        }
        for row in parts["test"]
    ]
    return datasets.DatasetDict(
        {"test": datasets.Dataset.from_list(test), "dev": datasets.Dataset.from_list(dev)}
    )


def question_text(doc: dict[str, str]) -> str:
    """CMMLU's ``format_example`` without the answer (as ``doc_to_text`` renders it)."""
    options = "".join(f"\n{c}. {doc[c]}" for c in CHOICES)
    return f"题目：{doc['Question']}{options}\n答案是："


def shot_text(doc: dict[str, str]) -> str:
    """CMMLU's ``format_example`` with the answer: one shot, blank line included."""
    return f"{question_text(doc)}{doc['Answer']}\n\n"


def _max_length(metadata: dict[str, Any]) -> int:
    value = metadata.get(METADATA_MAX_LENGTH, MAX_LENGTH)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CMMLUDataError(
            f"metadata {METADATA_MAX_LENGTH}={value!r}: expected a positive number of tokens"
        )
    return value


def _tokenizer_for(metadata: dict[str, Any]) -> Any:
    name = next(
        (
            metadata[k]
            for k in (METADATA_TOKENIZER, "tokenizer", "pretrained")
            if isinstance(metadata.get(k), str) and metadata[k]
        ),
        None,
    )
    if name is None:
        return None
    revision = metadata.get("revision") if METADATA_TOKENIZER not in metadata else None
    trust = metadata.get("trust_remote_code") is True
    return _load_tokenizer(name, revision if isinstance(revision, str) else None, trust)


@functools.cache
def _load_tokenizer(name: str, revision: str | None, trust_remote_code: bool) -> Any:
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if revision:
        kwargs["revision"] = revision
    try:
        return AutoTokenizer.from_pretrained(name, **kwargs)
    except Exception as err:  # missing, offline, not a tokenizer: all end the same way
        raise CMMLUDataError(
            f"cmmlu_langadapt counts prompt tokens as CMMLU's code does, with the model's "
            f"tokenizer, but {name!r} could not be loaded ({type(err).__name__}: {err}). "
            f'Name one with lm_eval --metadata \'{{"{METADATA_TOKENIZER}": "NAME_OR_DIR"}}\'.'
        ) from err


def drop_longest_shots(shots: list[dict[str, Any]], budget: int | None) -> list[dict[str, Any]]:
    """CMMLU's ``gen_prompt`` rule: while the shots' tokens reach the budget, drop the
    longest (every shot of that length). A negative budget keeps the question alone."""
    if budget is None:
        return shots
    if budget < 0:
        return []
    while shots and sum(s["shot_tokens"] for s in shots) >= budget:
        longest = max(s["shot_tokens"] for s in shots)
        shots = [s for s in shots if s["shot_tokens"] != longest]
    return shots


class LongestShotDropping(FirstNSampler):
    """The first ``n`` dev rows, less those CMMLU's rule drops for the current question."""

    budget: int | None = None  # set per question by CMMLUTask.fewshot_context

    def sample(self, n: int, eval_doc: Any = None, df: Any = None, **kwargs: Any) -> list:
        shots = list(super().sample(n, eval_doc=eval_doc, df=df, **kwargs))
        return drop_longest_shots(shots, self.budget)


class CMMLUTask(ConfigurableTask):
    """lm-eval's configurable task, handing each question's token budget to the sampler
    (lm-eval's samplers are not told which question the shots are for)."""

    def __init__(self, config: dict | None = None, **kwargs: Any) -> None:
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        super().__init__(config=config, **kwargs)

    def fewshot_context(self, doc: dict, num_fewshot: int, **kwargs: Any) -> Any:
        if isinstance(getattr(self, "sampler", None), LongestShotDropping):
            self.sampler.budget = doc.get("shot_budget")
        return super().fewshot_context(doc=doc, num_fewshot=num_fewshot, **kwargs)


def doc_to_target(doc: dict[str, str]) -> int:
    return CHOICES.index(doc["Answer"])
