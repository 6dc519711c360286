"""MT-Bench questions and reference answers for the mtbench tasks, per language spec.

Where the data comes from, in order:

1. ``--metadata '{"mtbench_dir": "DIR"}'``, else the ``LANGADAPT_MTBENCH_DIR``
   environment variable: a directory laid out like FastChat's ``data/``, one
   folder per language: ``zh/question.jsonl``, ``zh/reference_answer/gpt-4.jsonl``,
   and optionally ``en/...`` and ``tr/question.jsonl``;
2. the spec's own question file (Turkish: the project's own translation,
   shipped in this package as ``data/mt_bench/tr/question.jsonl``; see its NOTE.md);
3. the spec's Hub dataset (Chinese: ``GeneZC/MT-Bench-ZH``) or public files (English:
   FastChat's, ``questions.url``, downloaded once into ``$LANGADAPT_HOME``), only when no
   local directory is configured.

Reference answers, per question: the language's ``reference_answer/gpt-4.jsonl``
when there is one (MT-Bench-ZH), else the question's own ``reference`` field
(the Turkish translation carries FastChat's references, translated), else the
English GPT-4 reference answers when the local directory has ``en/``: what
math, code and reasoning references depend on (numbers, code) is language-neutral.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from langadapt_tasks import files, paths
from langadapt_tasks.languages import spec as language_spec
from langadapt_tasks.languages.spec import LanguageSpec
from langadapt_tasks.paths import local_dir, offline

ENV_DIR = "LANGADAPT_MTBENCH_DIR"
METADATA_DIR = "mtbench_dir"
ENV_TURN1 = "LANGADAPT_MTBENCH_TURN1"
METADATA_TURN1 = "mtbench_turn1"
PACKAGE_DIR = paths.PACKAGE_DIR / "data" / "mt_bench"
# The shipped languages, each defined by its spec in languages/<code>.yaml.
LANGS = tuple(language_spec.builtin_specs())
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


def group_name(lang: str, turn: int) -> str:
    """The lm-eval group of a language and turn (``mtbench_langadapt_zh``, ``..._zh_mt``)."""
    return f"mtbench_langadapt_{lang}" + ("_mt" if turn == 2 else "")


class MTBenchDataError(ValueError):
    """MT-Bench data could not be found or a row is malformed."""


def read_jsonl(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, row) pairs of an MT-Bench JSONL file (``files.read_jsonl``); ``where``
    names the file and line for error messages. A file without rows is an error."""
    rows = files.read_jsonl(path, MTBenchDataError)
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
    limit = language_spec.MAX_QUESTION_TEXT
    for key, texts in (("turns", turns), ("reference", reference)):
        for i, text in enumerate(texts):
            size = len(text.encode("utf-8", "surrogatepass"))
            if size > limit:
                raise MTBenchDataError(
                    f"{where}: {key}[{i}] is {size:,} bytes; the limit is {limit:,} bytes "
                    f"({limit // 1024} KiB); see docs/languages.md"
                )
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
    return local_dir(metadata, METADATA_DIR, ENV_DIR, MTBenchDataError)


def _hub_file(spec: LanguageSpec, name: str) -> Path:
    from huggingface_hub import hf_hub_download

    repo, file = spec.hub["repo"], spec.hub[name]
    try:
        return Path(hf_hub_download(repo, file, repo_type="dataset"))
    except Exception as err:  # offline, renamed, gated: all end the same way
        local = spec.local or spec.code
        raise MTBenchDataError(
            f"{spec.name} MT-Bench questions could not be loaded from the Hub ({repo}/{file}: "
            f"{type(err).__name__}: {err}). Point at a local copy instead, with "
            f'{ENV_DIR}=DIR or lm_eval --metadata \'{{"{METADATA_DIR}": "DIR"}}\', where '
            f"DIR/{local}/question.jsonl (and DIR/{local}/reference_answer/gpt-4.jsonl) exist."
        ) from err


def _sources(root: Path | None, lang: str) -> tuple[Path, Path | None, Path | None]:
    """(question file, the language's reference answers, English reference answers).

    In order: the language's folder under the local MT-Bench directory, the
    spec's own question file, the spec's Hub dataset (only without a local directory).
    """
    try:
        spec = language_spec.get(lang)
    except language_spec.LanguageSpecError as err:
        raise MTBenchDataError(str(err)) from None
    en = root / "en" / "reference_answer" / "gpt-4.jsonl" if root else None
    en = en if en and en.is_file() and lang != "en" else None
    local = root / (spec.local or lang) if root else None
    if local and (local / "question.jsonl").is_file():
        own = local / "reference_answer" / "gpt-4.jsonl"
        return local / "question.jsonl", own if own.is_file() else None, en
    if spec.file is not None:
        if not spec.file.is_file():
            raise MTBenchDataError(f"{spec.file} is missing: reinstall langadapt")
        own = spec.file.parent / "reference_answer" / "gpt-4.jsonl"
        return spec.file, own if own.is_file() else None, en
    if root is None and spec.questions_url:
        hint = (
            f"Point at a local copy instead, with {ENV_DIR}=DIR or lm_eval --metadata "
            f'\'{{"{METADATA_DIR}": "DIR"}}\', where DIR/{spec.local or lang}/question.jsonl '
            "exists."
        )
        if offline():
            raise MTBenchDataError(f"{spec.name} MT-Bench: the Hub is off (HF_HUB_OFFLINE). {hint}")
        fetch = [spec.questions_url, *([spec.reference_url] if spec.reference_url else [])]
        got = [paths.download_once(u, "mt_bench", MTBenchDataError, hint) for u in fetch]
        return got[0], (got[1] if len(got) > 1 else None), None
    if root is not None or not spec.hub:
        where = f"{root}/{spec.local or lang}" if root else f"{spec.path}: no question source"
        raise MTBenchDataError(f"{where}/question.jsonl not found (MT-Bench layout)")
    reference = _hub_file(spec, "reference") if spec.hub.get("reference") else None
    return _hub_file(spec, "question"), reference, None


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
