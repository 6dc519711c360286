"""MT-Bench questions (Chinese, Turkish) and reference answers for the mtbench tasks.

Where the data comes from, in order:

1. ``--metadata '{"mtbench_dir": "DIR"}'``, else the ``LANGADAPT_MTBENCH_DIR``
   environment variable: a directory laid out like FastChat's ``data/``, one
   folder per language: ``zh/question.jsonl``, ``zh/reference_answer/gpt-4.jsonl``,
   and optionally ``en/...`` and ``tr/question.jsonl``;
2. Chinese: the Hugging Face Hub dataset ``GeneZC/MT-Bench-ZH`` (MT-Bench-ZH);
3. Turkish: the project's own translation, shipped in this package
   (``data/mt_bench/tr/question.jsonl``; see its NOTE.md), unless the local
   directory has a ``tr/`` folder.

Reference answers, per question: the language's ``reference_answer/gpt-4.jsonl``
when there is one (MT-Bench-ZH), else the question's own ``reference`` field
(the Turkish translation carries FastChat's references, translated), else the
English GPT-4 reference answers when the local directory has ``en/``: what
math, code and reasoning references depend on (numbers, code) is language-neutral.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

ENV_DIR = "LANGADAPT_MTBENCH_DIR"
METADATA_DIR = "mtbench_dir"
ENV_TURN1 = "LANGADAPT_MTBENCH_TURN1"
METADATA_TURN1 = "mtbench_turn1"
HUB_REPO = "GeneZC/MT-Bench-ZH"
HUB_FILES = {
    "question": "data/mt_bench_zh/question.jsonl",
    "reference": "data/mt_bench_zh/reference_answer/gpt-4.jsonl",
}
PACKAGE_DIR = Path(__file__).resolve().parent / "data" / "mt_bench"
LANGS = ("zh", "tr")
CATEGORIES = (
    "writing",
    "roleplay",
    "reasoning",
    "math",
    "coding",
    "extraction",
    "stem",
    "humanities",
)


class MTBenchDataError(ValueError):
    """MT-Bench data could not be found or a row is malformed."""


def read_jsonl(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, row) pairs; ``where`` names the file and line for error messages."""
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}, line {n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise MTBenchDataError(f"{where}: not JSON ({err})") from err
            if not isinstance(row, dict):
                raise MTBenchDataError(f"{where}: expected a JSON object")
            rows.append((where, row))
    if not rows:
        raise MTBenchDataError(f"{path}: no rows")
    return rows


def validate_question(row: dict[str, Any], where: str) -> dict[str, Any]:
    qid, category, turns = row.get("question_id"), row.get("category"), row.get("turns")
    if not isinstance(qid, int):
        raise MTBenchDataError(f"{where}: question_id {qid!r} is not an integer")
    if category not in CATEGORIES:
        raise MTBenchDataError(f"{where}: category {category!r} is not one of {CATEGORIES}")
    if (
        not isinstance(turns, list)
        or len(turns) != 2
        or not all(isinstance(t, str) and t.strip() for t in turns)
    ):
        raise MTBenchDataError(f"{where}: 'turns' must be a list of two non-empty strings")
    reference = row.get("reference") or []
    if not isinstance(reference, list) or not all(isinstance(r, str) for r in reference):
        raise MTBenchDataError(f"{where}: 'reference' must be a list of strings")
    return {"question_id": qid, "category": category, "turns": turns, "reference": reference}


def read_questions(path: Path) -> list[dict[str, Any]]:
    questions = [validate_question(row, where) for where, row in read_jsonl(path)]
    seen: set[int] = set()
    for q in questions:
        if q["question_id"] in seen:
            raise MTBenchDataError(f"{path}: question_id {q['question_id']} appears twice")
        seen.add(q["question_id"])
    return questions


def read_references(path: Path) -> dict[int, list[str]]:
    """question_id -> reference answer turns, from a FastChat ``reference_answer`` file."""
    refs = {}
    for where, row in read_jsonl(path):
        try:
            refs[int(row["question_id"])] = [str(t) for t in row["choices"][0]["turns"]]
        except (KeyError, IndexError, TypeError, ValueError) as err:
            raise MTBenchDataError(
                f"{where}: expected question_id and choices[0].turns ({err!r})"
            ) from err
    return refs


def data_dir(metadata: dict[str, Any] | None = None) -> Path | None:
    """The local MT-Bench directory chosen by task metadata or environment, if any."""
    value = (metadata or {}).get(METADATA_DIR) or os.environ.get(ENV_DIR)
    if not value:
        return None
    root = Path(value).expanduser()
    if not root.is_dir():
        source = f"--metadata {METADATA_DIR}" if (metadata or {}).get(METADATA_DIR) else ENV_DIR
        raise MTBenchDataError(f"{source}={value}: no such directory")
    return root


def _hub_file(name: str) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(HUB_REPO, HUB_FILES[name], repo_type="dataset"))
    except Exception as err:  # offline, renamed, gated: all end the same way
        raise MTBenchDataError(
            f"MT-Bench-ZH could not be loaded from the Hub ({HUB_REPO}/{HUB_FILES[name]}: "
            f"{type(err).__name__}: {err}). Point at a local copy instead, with "
            f'{ENV_DIR}=DIR or lm_eval --metadata \'{{"{METADATA_DIR}": "DIR"}}\', where '
            "DIR/zh/question.jsonl and DIR/zh/reference_answer/gpt-4.jsonl exist."
        ) from err


def _sources(root: Path | None, lang: str) -> tuple[Path, Path | None, Path | None]:
    """(question file, the language's reference answers, English reference answers)."""
    en = root / "en" / "reference_answer" / "gpt-4.jsonl" if root else None
    en = en if en and en.is_file() and lang != "en" else None
    local = root / lang if root else None
    if local and (local / "question.jsonl").is_file():
        own = local / "reference_answer" / "gpt-4.jsonl"
        return local / "question.jsonl", own if own.is_file() else None, en
    if lang == "zh":
        if root is not None:
            raise MTBenchDataError(f"{root}/zh/question.jsonl not found (MT-Bench-ZH layout)")
        return _hub_file("question"), _hub_file("reference"), None
    if lang == "tr":
        packaged = PACKAGE_DIR / "tr" / "question.jsonl"
        if not packaged.is_file():
            raise MTBenchDataError(f"{packaged} is missing: reinstall langadapt")
        return packaged, None, en
    raise MTBenchDataError(f"unknown MT-Bench language {lang!r}; known: {LANGS}")


@functools.cache
def load_questions(root: Path | None, lang: str) -> tuple[dict[str, Any], ...]:
    """All questions of ``lang`` with their reference answers (``reference``, maybe [])."""
    qfile, own_file, en_file = _sources(root, lang)
    own = read_references(own_file) if own_file else {}
    en = read_references(en_file) if en_file else {}
    out = []
    for q in read_questions(qfile):
        qid = q["question_id"]
        out.append({**q, "reference": own.get(qid) or q["reference"] or en.get(qid) or []})
    return tuple(out)


def turn1_source(metadata: dict[str, Any] | None = None) -> Path | None:
    value = (metadata or {}).get(METADATA_TURN1) or os.environ.get(ENV_TURN1)
    return Path(value).expanduser() if value else None


def sample_answer(sample: dict[str, Any]) -> str | None:
    resp = sample.get("filtered_resps") or sample.get("resps")
    while isinstance(resp, list) and resp:
        resp = resp[0]
    return resp if isinstance(resp, str) else None


def turn1_answers(source: Path, lang: str) -> dict[int, str]:
    """question_id -> the model's own turn-1 answer, from lm-eval ``--log_samples`` output.

    ``source`` is a samples file or a directory searched for the turn-1 samples
    of ``mtbench_langadapt_<lang>``; newer files win.
    """
    if source.is_dir():
        prefix = f"samples_mtbench_langadapt_{lang}_"
        files = [
            p for p in source.rglob(f"{prefix}*.jsonl") if not p.name.startswith(f"{prefix}mt_")
        ]
        files.sort(key=lambda p: p.stat().st_mtime)
    elif source.is_file():
        files = [source]
    else:
        raise MTBenchDataError(f"turn-1 samples {source}: no such file or directory")
    answers: dict[int, str] = {}
    for path in files:
        for where, sample in read_jsonl(path):
            doc = sample.get("doc") or {}
            answer = sample_answer(sample)
            if doc.get("lang") != lang or doc.get("turn") != 1:
                continue
            if answer is None:
                raise MTBenchDataError(f"{where}: no generated answer (resps) in the sample")
            answers[int(doc["question_id"])] = answer
    return answers
