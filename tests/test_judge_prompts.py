"""The judge rubrics against their references.

``fastchat``: the messages FastChat's ``run_judge_single`` (lm-sys/FastChat,
``fastchat/llm_judge/common.py``) would send, computed here straight from the
reference prompt files (MT-Bench-ZH's ``judge_prompts_zh.jsonl``, FastChat's
``judge_prompts.jsonl``), and FastChat's ``[[rating]]`` parsing. ``paper``: the
study's printed prompt (section 3.2.2), quoted below.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import http.server
import json
import math
import os
import re
import threading
from pathlib import Path

import pytest

from langadapt_tasks.judge import rubrics
from langadapt_tasks.judge.rubrics import JudgeItem, build_messages, parse
from langadapt_tasks.languages import spec as language_spec
from langadapt_tasks.languages.judge_templates import TEMPLATE_DIR

# --- the references ------------------------------------------------------------------------

# The study, section 3.2.2: its GPT-4 judge system prompt and examples, as printed.
PAPER_SYSTEM = (
    "你是我的助手，你要负责评估问题回应的质量，评分范围从1到5分。你应该根据回答的内容进行打分。"
    "你的答案一定要是一个数字，不能有其他文字。以下是一些你可以参考的例子："
)
PAPER_EXAMPLE_1_QUESTION = "描述原子的结构"
PAPER_EXAMPLE_2_QUESTION = "什么是三原色？"
PAPER_EXAMPLE_2_ANSWER = "3 种原色是红色、橙色和白色。"

# MT-Bench-ZH's judge prompts at their public source (GeneZC/MiniMA, mt_bench_zh/data).
MT_BENCH_ZH_PROMPTS_URL = (
    "https://raw.githubusercontent.com/GeneZC/MiniMA/main/mt_bench_zh/data/judge_prompts_zh.jsonl"
)

# FastChat common.py, verbatim: NEED_REF_CATS and the two rating patterns.
NEED_REF_CATS = ["math", "reasoning", "coding"]
ONE_SCORE_PATTERN = re.compile("\\[\\[(\\d+\\.?\\d*)\\]\\]")
ONE_SCORE_PATTERN_BACKUP = re.compile("\\[(\\d+\\.?\\d*)\\]")


def load_judge_prompts(prompt_file: Path) -> dict[str, dict]:
    """FastChat's ``load_judge_prompts``."""
    prompts = {}
    with open(prompt_file, encoding="utf-8") as fin:
        for line in fin:
            line = json.loads(line)
            prompts[line["name"]] = line
    return prompts


def fastchat_messages(
    prompts: dict[str, dict], question: dict, answer_turns: list[str], ref_turns, multi_turn: bool
) -> list[dict[str, str]]:
    """FastChat's ``run_judge_single`` up to the request: judge choice as in gen_judgment.py
    (math judge for NEED_REF_CATS), the template filled in, system + user messages."""
    ref = question["category"] in NEED_REF_CATS
    name = ("single-math-v1" if ref else "single-v1") + ("-multi-turn" if multi_turn else "")
    judge = prompts[name]
    kwargs = {}
    if ref:
        kwargs["ref_answer_1"] = ref_turns[0]
        kwargs["ref_answer_2"] = ref_turns[1]
    if multi_turn:
        user_prompt = judge["prompt_template"].format(
            question_1=question["turns"][0],
            question_2=question["turns"][1],
            answer_1=answer_turns[0],
            answer_2=answer_turns[1],
            **kwargs,
        )
    else:
        user_prompt = judge["prompt_template"].format(
            question=question["turns"][0], answer=answer_turns[0], **kwargs
        )
    return [
        {"role": "system", "content": judge["system_prompt"]},
        {"role": "user", "content": user_prompt},
    ]


def fastchat_rating(judgment: str) -> float:
    """FastChat's parsing in ``run_judge_single``: -1 when nothing parses."""
    match = re.search(ONE_SCORE_PATTERN, judgment)
    if not match:
        match = re.search(ONE_SCORE_PATTERN_BACKUP, judgment)
    if match:
        return ast.literal_eval(match.groups()[0])
    return -1


def questions(root: Path, lang: str) -> dict[int, dict]:
    rows = [
        json.loads(x) for x in (root / lang / "question.jsonl").read_text("utf-8").split("\n") if x
    ]
    return {r["question_id"]: r for r in rows}


def references(root: Path, lang: str) -> dict[int, list[str]]:
    path = root / lang / "reference_answer" / "gpt-4.jsonl"
    rows = [json.loads(x) for x in path.read_text("utf-8").splitlines() if x]
    return {r["question_id"]: r["choices"][0]["turns"] for r in rows}


def turkish_prompts(root: Path) -> dict[str, dict]:
    """FastChat's English prompts with MT-Bench-ZH's change (its only difference from
    them, found by diffing the two files) made for Turkish."""
    en = load_judge_prompts(root / "en" / "judge_prompts.jsonl")
    zh = load_judge_prompts(root / "zh" / "judge_prompts_zh.jsonl")
    out = {}
    for name, row in en.items():
        out[name] = dict(row)
        for key in ("system_prompt", "prompt_template"):
            a, b = row[key], zh[name][key]
            text = ""
            for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, False).get_opcodes():
                assert op in ("equal", "insert"), (name, key, op)  # MT-Bench-ZH only inserts
                text += a[i1:i2] if op == "equal" else b[j1:j2].replace("Chinese", "Turkish")
            out[name][key] = text
    return out


# Answers with braces and FastChat's own field names: str.format must leave them alone.
ANSWER_1 = "第一轮的回答 {question} {answer_1}"
ANSWER_2 = "第二轮的回答 {{ref_answer_1}}"


def make_item(lang: str, q: dict, turn: int, refs: list[str] | None) -> JudgeItem:
    return JudgeItem(
        lang=lang,
        turn=turn,
        question_id=q["question_id"],
        category=q["category"],
        questions=tuple(q["turns"]),
        answers=(ANSWER_1,) if turn == 1 else (ANSWER_1, ANSWER_2),
        reference=tuple(refs or ()),
    )


# --- rubric fastchat ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _mtbench_dir(mt_bench_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The Chinese prompts come from the MT-Bench directory (nothing is downloaded)."""
    monkeypatch.setenv("LANGADAPT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LANGADAPT_MTBENCH_DIR", str(mt_bench_dir))


@pytest.fixture(scope="module")
def prompt_server(mt_bench_dir: Path):
    """A loopback HTTP server standing in for MT-Bench-ZH's public file."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(mt_bench_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/zh/judge_prompts_zh.jsonl"
    server.shutdown()


@pytest.fixture(params=["data-dir", "download"])
def prompt_source(
    request, mt_bench_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path, prompt_server: str
) -> str:
    """Read the prompts from the MT-Bench directory, or (none configured) download them
    from the spec's public source (here a loopback server serving the same file)."""
    monkeypatch.setenv("LANGADAPT_HOME", str(tmp_path / "home"))
    if request.param == "data-dir":
        monkeypatch.setenv("LANGADAPT_MTBENCH_DIR", str(mt_bench_dir))
    else:
        monkeypatch.delenv("LANGADAPT_MTBENCH_DIR", raising=False)
        zh = language_spec.get("zh")
        assert zh.judge_prompts_url == MT_BENCH_ZH_PROMPTS_URL
        original = language_spec.get
        patched = dataclasses.replace(zh, judge_prompts_url=prompt_server)
        monkeypatch.setattr(
            language_spec, "get", lambda code: patched if code == "zh" else original(code)
        )
    return request.param


def test_download_failure_names_the_local_options(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("LANGADAPT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LANGADAPT_MTBENCH_DIR", raising=False)
    zh = language_spec.get("zh")
    dead = dataclasses.replace(zh, judge_prompts_url="http://127.0.0.1:9/judge_prompts_zh.jsonl")
    monkeypatch.setattr(language_spec, "get", lambda code: dead)
    with pytest.raises(ValueError, match="LANGADAPT_MTBENCH_DIR") as err:
        rubrics.fastchat_prompts_file("zh")
    assert "zh/judge_prompts_zh.jsonl" in str(err.value)


@pytest.mark.parametrize("qid", [81, 111, 125])  # writing; math and coding: reference-guided
@pytest.mark.parametrize("turn", [1, 2])
def test_fastchat_zh_is_mt_bench_zh_byte_for_byte(
    prompt_source: str, mt_bench_dir: Path, qid: int, turn: int
) -> None:
    prompts = load_judge_prompts(mt_bench_dir / "zh" / "judge_prompts_zh.jsonl")
    q = questions(mt_bench_dir, "zh")[qid]
    refs = references(mt_bench_dir, "zh")[qid]
    expected = fastchat_messages(prompts, q, [ANSWER_1, ANSWER_2], refs, multi_turn=turn == 2)
    got = build_messages("fastchat", make_item("zh", q, turn, refs))
    assert got == expected
    assert json.dumps(got, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False)
    if q["category"] in NEED_REF_CATS:
        assert refs[turn - 1] in got[1]["content"]
        assert (
            "language in use (i.e., English or Chinese), correctness"
            in got[-1]["content"] + (got[0]["content"])
        )


@pytest.mark.parametrize("qid", [81, 111])
@pytest.mark.parametrize("turn", [1, 2])
def test_fastchat_tr_is_fastchat_english_with_mt_bench_zh_change(
    mt_bench_dir: Path, qid: int, turn: int
) -> None:
    prompts = turkish_prompts(mt_bench_dir)
    q = questions(mt_bench_dir, "en")[qid]  # any question text: the prompt is what is compared
    refs = references(mt_bench_dir, "en").get(qid, [])  # FastChat's: math/reasoning/coding
    expected = fastchat_messages(prompts, q, [ANSWER_1, ANSWER_2], refs, multi_turn=turn == 2)
    got = build_messages("fastchat", make_item("tr", q, turn, refs))
    assert got == expected
    assert "(i.e., English or Turkish)" in got[0]["content"] + got[1]["content"]


def test_packaged_turkish_prompts_state_each_sentences_source(mt_bench_dir: Path) -> None:
    data = Path(rubrics.__file__).resolve().parent.parent / "data" / "judge"
    assert sorted(p.name for p in data.glob("*.jsonl")) == ["judge_prompts_tr.jsonl"]
    turkish = turkish_prompts(mt_bench_dir)
    shipped = load_judge_prompts(data / "judge_prompts_tr.jsonl")
    # Every single-answer and pairwise prompt FastChat has, in its order.
    assert list(shipped) == [name for name in turkish if name.startswith(("single-", "pair-"))]
    assert len(shipped) == 8
    for name, row in shipped.items():
        provenance = row.pop("provenance")
        assert row == turkish[name]
        # Every sentence's source is stated, the changed one as ours.
        ours = [p for p in provenance if "English or Turkish" in p["sentence"]]
        assert len(ours) == 1 and "langadapt's change" in ours[0]["source"]
        assert all(p["source"] for p in provenance)


def test_fastchat_without_reference_answers_uses_the_general_prompt(mt_bench_dir: Path) -> None:
    prompts = load_judge_prompts(mt_bench_dir / "zh" / "judge_prompts_zh.jsonl")
    q = questions(mt_bench_dir, "zh")[111]
    got = build_messages("fastchat", make_item("zh", q, 1, None))
    assert got[1]["content"] == prompts["single-v1"]["prompt_template"].format(
        question=q["turns"][0], answer=ANSWER_1
    )


REPLIES = [
    "The answer is right. Rating: [[7]]",
    "[[10]]",
    "Rating: [8]",
    "[[7.5]]",
    "Rating: [[0]]",
    "[[11]]",
    "[[3]] or maybe [[9]]",  # FastChat: the first one
    "see [1]. Rating: [[6]]",  # [[n]] before the [n] backup
    "see [2] and [[x]]",
    "Rating: 7",
    "",
    "[[5.]]",
]


@pytest.mark.parametrize("reply", REPLIES)
def test_fastchat_parser_is_fastchats(reply: str) -> None:
    item = JudgeItem("zh", 1, 81, "writing", ("q", "q2"), ("a",))
    expected = fastchat_rating(reply)
    got = parse("fastchat", reply, item)
    assert got == (None if expected == -1 else float(expected))


def test_fastchat_request_settings_and_reask(mt_bench_dir: Path) -> None:
    assert rubrics.request_defaults("fastchat") == {"temperature": 0.0, "max_tokens": 2048}
    assert rubrics.request_defaults("fastchat-guarded")["max_tokens"] == 2048
    assert set(rubrics.RUBRICS) == {
        "paper",
        "paper-guarded",
        "fastchat",
        "fastchat-guarded",
        "fastchat-pair",
    }
    # The scale FastChat's single-answer prompts state ("on a scale of 1 to 10").
    single = [
        row["system_prompt"] + row["prompt_template"]
        for name, row in load_judge_prompts(mt_bench_dir / "en" / "judge_prompts.jsonl").items()
        if name.startswith("single-")
    ]
    stated = {m for text in single for m in re.findall(r"scale of (\d+) to (\d+)", text)}
    assert len(single) == 4 and stated == {("1", "10")}
    scale = tuple(int(x) for x in stated.pop())
    assert rubrics.SCALES["fastchat"] == rubrics.SCALES["fastchat-guarded"] == scale
    assert set(rubrics.SCALES) == set(rubrics.RUBRICS)
    assert "[[rating]]" in rubrics.reask_message("fastchat", "zh")


# --- rubric paper ---------------------------------------------------------------------------


def test_paper_zh_is_the_studys_prompt() -> None:
    item = JudgeItem(
        "zh", 1, 81, "writing", ("什么是光合作用？", "q2"), ("植物利用光能制造有机物。",)
    )
    system, user = build_messages("paper", item)
    assert system["role"] == "system" and user["role"] == "user"
    assert system["content"].startswith(PAPER_SYSTEM)
    body = system["content"][len(PAPER_SYSTEM) :]
    first, second = body.split(f"Human: {PAPER_EXAMPLE_2_QUESTION}")
    assert f"Human: {PAPER_EXAMPLE_1_QUESTION}\nAI: " in first and first.rstrip().endswith("5")
    assert second == f"\nAI: {PAPER_EXAMPLE_2_ANSWER}\nScore: 0"
    # The question and answer in the examples' layout.
    assert user["content"] == "Human: 什么是光合作用？\nAI: 植物利用光能制造有机物。\nScore:"
    assert "<<<" not in system["content"] + user["content"]  # no fences: that is paper-guarded
    assert rubrics.reask_message("paper", "zh") == "你的答案一定要是一个数字，不能有其他文字。"


# The study's judge prompt as printed, kept beside the checkout (never in the repository).
REFERENCE = Path(
    os.environ.get(
        "LANGADAPT_TEST_REFERENCE", Path(__file__).resolve().parents[2] / "shared" / "reference"
    )
)
_CJK = r"[\u4e00-\u9fff，：（）？。、]"
_FULL_WIDTH = str.maketrans({",": "，", ":": "：", "(": "（", ")": "）", "?": "？"})


def printed_chinese_prompt() -> str:
    path = REFERENCE / "study-judge-prompt.md"
    if not path.is_file():
        pytest.fail(f"{path} not found; set LANGADAPT_TEST_REFERENCE to its folder")
    text = path.read_text(encoding="utf-8")
    return text.split("## Chinese, as printed")[1].split("```text\n")[1].split("\n```")[0]


def as_sent(printed: str) -> str:
    """The PDF's text read as docs/mtbench.md says: ASCII , : ( ) ? are the full-width marks,
    and white space between two Chinese characters or marks is a line break, not text."""
    text = printed.translate(_FULL_WIDTH)
    return re.sub(rf"(?<={_CJK})\s+(?={_CJK})", "", text).strip()


def test_paper_zh_is_the_prompt_as_printed_example_answers_included() -> None:
    """The whole system message, built here from the study's printed text (the reference file):
    its instruction, then both examples in the Human / AI / Score layout (the labels and the
    scores 5 and 0 as the English translation prints them)."""
    instruction, question_1, answer_1, second = printed_chinese_prompt().split("\n\n")
    assert answer_1.startswith("AI: ") and second.startswith("人类:: ")
    question_2, answer_2 = second.removeprefix("人类:: ").split(" AI: ")
    expected = (
        f"{as_sent(instruction)}\n"
        f"Human: {as_sent(question_1)}\nAI: {as_sent(answer_1.removeprefix('AI: '))}\nScore: 5\n\n"
        f"Human: {as_sent(question_2)}\nAI: {as_sent(answer_2)}\nScore: 0"
    )
    item = JudgeItem("zh", 1, 81, "writing", ("问", "问2"), ("答",))
    system, _ = build_messages("paper", item)
    assert system["content"] == expected
    assert "质子和中子在中心紧密结合在一起。原子核周围是电子，它们以特定的能级" in expected
    assert as_sent(instruction) == PAPER_SYSTEM


def test_paper_tr_is_marked_as_our_translation() -> None:
    item = JudgeItem("tr", 2, 81, "writing", ("Soru 1", "Soru 2"), ("Yanıt 1", "Yanıt 2"))
    system, user = build_messages("paper", item)
    assert "1 ile 5" in system["content"] and system["content"].endswith("Score: 0")
    assert user["content"] == "Human: Soru 1\nAI: Yanıt 1\n\nHuman: Soru 2\nAI: Yanıt 2\nScore:"
    template = Path(TEMPLATE_DIR / "paper_tr.j2").read_text(encoding="utf-8")
    assert "langadapt's own translation" in template
    # Nothing of the Chinese prompt is reconstructed any more: the first example's answer is
    # the printed one (test above), and the Turkish example translates it.
    assert "RECONSTRUCTED" not in (TEMPLATE_DIR / "paper_zh.j2").read_text(encoding="utf-8")
    assert "negatif yüklüdür ve çekirdeğin etrafında hızla hareket eder" in system["content"]


@pytest.mark.parametrize(
    ("rubric", "reply", "score"),
    [
        # Regression: "must never give 5" was read as a 5.
        ("paper", "绝对不能给5分", None),
        ("paper-guarded", "绝对不能给5分", None),
        ("paper", "5", 5.0),
        ("paper", " 3\n", 3.0),
        ("paper", "Score: 4", 4.0),
        # The study's prompt teaches 0 (its negative example): a verdict, counted as 0.
        ("paper", "0", 0.0),
        ("paper", "6", None),
        ("paper", "4.5", None),
        ("paper", "I give it 4", None),
        ("paper", "4 分", None),
        ("paper-guarded", "评分：3", 3.0),
        ("paper-guarded", "Puan: 2", 2.0),
        ("paper-guarded", "0", None),  # its own examples teach 1–5
        ("paper-guarded", "评分：3，但是可以给5", None),
    ],
)
def test_paper_parsers_take_a_bare_score_only(rubric: str, reply: str, score) -> None:
    item = JudgeItem("zh", 1, 81, "writing", ("q", "q2"), ("an answer of some length",))
    got = parse(rubric, reply, item)
    assert got == score and (got is None or not math.isnan(got))
    # docs/mtbench.md: paper 0–5 (the prompt teaches 0), paper-guarded 1–5.
    assert rubrics.SCALES[rubric] == {"paper": (0, 5), "paper-guarded": (1, 5)}[rubric]
