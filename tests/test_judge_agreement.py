"""``langadapt judge-agreement`` against a transcription of FastChat's
``fastchat/llm_judge/compute_agreement.py`` (lm-sys/FastChat), on a small fixture in the
exact schema of ``lmsys/mt_bench_human_judgments``, with a loopback judge whose verdicts
are scripted, so the expected agreement is also known by hand."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from in_process import run_here
from judge_server import JudgeServer, Reply, prompt_of
from test_pairwise import fastchat_pair_messages, load_prompts, question

# --- compute_agreement.py, transcribed -----------------------------------------------------


def get_judge_name(judge):
    if isinstance(judge, list) and judge[0] == "gpt-4" and judge[1].startswith("pair"):
        return "gpt4-pair"
    if isinstance(judge, list) and judge[0] == "gpt-4":  # the paper's single-answer judge
        return "gpt4-single"
    if judge.startswith("expert"):
        return "human"
    if judge.startswith("author"):
        return "author"


def revert(vote):
    if vote == "model_a":
        return "model_b"
    elif vote == "model_b":
        return "model_a"
    return vote


def get_mt_bench_votes_data(raw_votes):
    data = [{}, {}]
    for judge_votes in raw_votes:
        for vote in judge_votes:
            turn = vote["turn"] - 1
            if vote["model_a"] < vote["model_b"]:
                key = (vote["question_id"], vote["model_a"], vote["model_b"])
                winner = vote["winner"]
            else:
                key = (vote["question_id"], vote["model_b"], vote["model_a"])
                winner = revert(vote["winner"])
            judge = get_judge_name(vote["judge"])
            data[turn].setdefault(key, {}).setdefault(judge, []).append(winner)
    return data


def convertvote(vote):
    if "tie" in vote:
        return "tie"
    return vote


def equalvote(vote1, vote2):
    if "tie" in vote1 and "tie" in vote2:
        return True
    return vote1 == vote2


def get_mt_bench_agreement(data, judge1, judge2, ban):
    if judge1.startswith("gpt4") and judge2 == "human":
        stats = [0, 0]
        for votes in data.values():
            if judge1 not in votes or judge2 not in votes:
                continue
            assert len(votes[judge1]) == 1
            if convertvote(votes[judge1][0]) in ban:
                continue
            for v in votes[judge2]:
                if convertvote(v) in ban:
                    continue
                stats[1] += 1
                stats[0] += equalvote(votes[judge1][0], v)
        return stats[0], stats[1]
    elif judge1 == "human" and judge2 == "human":
        stats = [0, 0]
        for votes in data.values():
            if "human" not in votes:
                continue
            for i in range(len(votes["human"]) - 1):
                for j in range(i + 1, len(votes["human"])):
                    if (
                        convertvote(votes["human"][i]) in ban
                        or convertvote(votes["human"][j]) in ban
                    ):
                        continue
                    stats[1] += 1
                    stats[0] += equalvote(votes["human"][i], votes["human"][j])
        return stats[0], stats[1]
    raise Exception("Unsupported judges.")


# --- the fixture ---------------------------------------------------------------------------

MODELS = ("gpt-4", "alpaca-13b", "llama-13b")
QUALITY = {"gpt-4": 9, "alpaca-13b": 6, "llama-13b": 4}  # the single-answer judge's ratings
# (turn, category, model_a, model_b, winner, judge): both name orders, both tie kinds, an
# author's vote (not a human's in compute_agreement.py), and votes against the judge.
VOTES = [
    (1, "writing", "gpt-4", "alpaca-13b", "model_a", "expert_0"),
    (1, "writing", "alpaca-13b", "gpt-4", "model_b", "expert_1"),
    (1, "writing", "gpt-4", "alpaca-13b", "tie", "expert_2"),
    (1, "writing", "gpt-4", "alpaca-13b", "model_b", "author_0"),
    (1, "writing", "alpaca-13b", "llama-13b", "tie (bothbad)", "expert_0"),
    (1, "writing", "alpaca-13b", "llama-13b", "model_a", "expert_3"),
    (1, "math", "gpt-4", "llama-13b", "model_b", "expert_1"),
    (1, "math", "llama-13b", "gpt-4", "model_b", "expert_4"),
    (2, "writing", "gpt-4", "alpaca-13b", "model_a", "expert_0"),
    (2, "writing", "gpt-4", "alpaca-13b", "model_a", "expert_1"),
    (2, "math", "llama-13b", "gpt-4", "model_b", "expert_2"),
]
SCHEMA = pa.schema(
    [
        ("question_id", pa.int64()),
        ("model_a", pa.string()),
        ("model_b", pa.string()),
        ("winner", pa.string()),
        ("judge", pa.string()),
        ("conversation_a", pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))),
        ("conversation_b", pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))),
        ("turn", pa.int64()),
    ]
)


def answer(model: str, qid: int, turn: int) -> str:
    return f"Answer of [{model}] to question {qid}, turn {turn}. [rating {QUALITY[model]}]"


def conversation(q: dict, model: str) -> list[dict[str, str]]:
    """Both turns, as the dataset stores them whatever turn the vote is about."""
    out = []
    for turn, text in enumerate(q["turns"], 1):
        out += [
            {"content": text, "role": "user"},
            {"content": answer(model, q["question_id"], turn), "role": "assistant"},
        ]
    return out


def rows(mt_bench_dir: Path) -> list[dict]:
    out = []
    for turn, category, a, b, winner, judge in VOTES:
        q = question(mt_bench_dir, category)
        out.append(
            {
                "question_id": q["question_id"],
                "model_a": a,
                "model_b": b,
                "winner": winner,
                "judge": judge,
                "conversation_a": conversation(q, a),
                "conversation_b": conversation(q, b),
                "turn": turn,
            }
        )
    return out


def write_dataset(folder: Path, data: list[dict]) -> Path:
    """The Hub repository's layout: data/human-00000-of-00001-<hash>.parquet."""
    path = folder / "data" / "human-00000-of-00001-5d5a8b3c.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(data, schema=SCHEMA), path)
    return folder


def pair_reply(body: dict, n: int) -> Reply:
    """Better rated answer wins in either order; alpaca against llama: always "[[A]]" (a
    judge with position bias, so its two orders disagree: a tie)."""
    shown = re.findall(r"Answer of \[([^\]]+)\]", prompt_of(body))
    first, second = shown[0], shown[-1]
    if {first, second} == {"alpaca-13b", "llama-13b"}:
        return Reply("Both are weak. [[A]]")
    return Reply("[[A]]" if QUALITY[first] > QUALITY[second] else "[[B]]")


def single_reply(body: dict, n: int) -> Reply:
    (rating,) = set(re.findall(r"\[rating (\d+)\]", prompt_of(body)))
    return Reply(f"Fine. Rating: [[{rating}]]")


# By hand, from the script above: the judge's winner per (turn, category, models by name).
HAND = {
    "fastchat-pair": {"gpt-4 vs alpaca": "gpt-4", "alpaca vs llama": "tie",
                      "gpt-4 vs llama": "gpt-4"},
    "fastchat": {"gpt-4 vs alpaca": "gpt-4", "alpaca vs llama": "alpaca",
                 "gpt-4 vs llama": "gpt-4"},
}  # fmt: skip


def judge_votes(data: list[dict], rubric: str) -> list[dict]:
    """The scripted judge's votes, one per key, in FastChat's vote-file format."""
    short = {"gpt-4": "gpt-4", "alpaca-13b": "alpaca", "llama-13b": "llama"}
    out, seen = [], set()
    for row in data:
        a, b = sorted((row["model_a"], row["model_b"]))
        key = (row["turn"], row["question_id"], a, b)
        if key in seen:
            continue
        seen.add(key)
        names = sorted((short[a], short[b]), key=list(short.values()).index)
        wins = HAND[rubric][" vs ".join(names)]
        winner = "tie" if wins == "tie" else ("model_a" if short[a] == wins else "model_b")
        judge = ["gpt-4", "pair-v2" if rubric == "fastchat-pair" else "single-v1"]
        out.append({"question_id": key[1], "model_a": a, "model_b": b, "winner": winner,
                    "judge": judge, "turn": key[0]})  # fmt: skip
    return out


def expected(data: list[dict], rubric: str) -> dict[str, dict[str, list[int]]]:
    name = "gpt4-pair" if rubric == "fastchat-pair" else "gpt4-single"
    both = get_mt_bench_votes_data([data, judge_votes(data, rubric)])
    humans_only = get_mt_bench_votes_data([data])
    out = {}
    for turn in (1, 2):
        for setup, ban in (("S1", []), ("S2", ["tie"])):
            out[f"turn{turn}/{setup}"] = {
                "judge": list(get_mt_bench_agreement(both[turn - 1], name, "human", ban)),
                "humans": list(
                    get_mt_bench_agreement(humans_only[turn - 1], "human", "human", ban)
                ),
            }  # fmt: skip
    return out


@pytest.fixture
def server() -> Iterator[JudgeServer]:
    srv = JudgeServer().start()
    yield srv
    srv.stop()


def _env(server: JudgeServer, mt_bench_dir: Path, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": "sk-agree-2222",
        "LANGADAPT_MTBENCH_DIR": str(mt_bench_dir),
        "LANGADAPT_JUDGE_CACHE": str(tmp_path / "cache.sqlite"),
        "HF_HUB_OFFLINE": "1",
    }


def _got(report: dict) -> dict[str, dict[str, list[int]]]:
    return {
        key: {who: [cell[who]["agree"], cell[who]["votes"]] for who in ("judge", "humans")}
        for key, cell in report["agreement"].items()
    }


@pytest.mark.parametrize("rubric", ["fastchat-pair", "fastchat"])
def test_agreement_is_compute_agreements(
    rubric: str, mt_bench_dir: Path, server: JudgeServer, tmp_path: Path
) -> None:
    data = rows(mt_bench_dir)
    folder = write_dataset(tmp_path / "mt_bench_human_judgments", data)
    server.responder = pair_reply if rubric == "fastchat-pair" else single_reply
    args = ["langadapt", "judge-agreement", "--data", str(folder), "--json"]
    args += ["--out", str(tmp_path / "out")] + (
        ["--rubric", rubric] if rubric == "fastchat" else []
    )
    proc = run_here(args, env=_env(server, mt_bench_dir, tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert _got(report) == expected(data, rubric)
    # By hand (the votes above): turn 1, pairwise judge, with ties 4 of 7; without, 3 of 4
    # (its alpaca-llama tie drops that key); the single judge picks alpaca there: 4 of 5.
    s2 = [3, 4] if rubric == "fastchat-pair" else [4, 5]
    assert _got(report)["turn1/S1"]["judge"] == [4, 7] and _got(report)["turn1/S2"]["judge"] == s2
    assert _got(report)["turn1/S1"]["humans"] == [1, 5]
    assert report["votes"] == 10 and report["of_votes"] == 10  # the author's vote is not counted
    if rubric == "fastchat-pair":
        assert len(server.requests) == 10  # five pairs of answers, both orders
        assert report["order_consistency"] == pytest.approx(4 / 5)
        prompts = load_prompts(mt_bench_dir, "en")
        wanted = []
        for row in data:
            q = question(mt_bench_dir, "math" if row["question_id"] > 110 else "writing")
            assert q["question_id"] == row["question_id"]
            turn = row["turn"]
            mine, theirs = ([answer(m, q["question_id"], t) for t in (1, 2)]
                            for m in (row["model_a"], row["model_b"]))  # fmt: skip
            for one, two in ((mine, theirs), (theirs, mine)):
                wanted.append(fastchat_pair_messages(prompts, q, one, two, q["reference"], turn))
        assert all(body["messages"] in wanted for body in server.requests)
    else:
        assert len(server.requests) == 9  # each model's answer to each question and turn once
        assert report["order_consistency"] is None
    written = sorted((tmp_path / "out").glob("agreement_*.jsonl"))
    assert len(written) == 2 and "sk-agree-2222" not in "".join(p.read_text() for p in written)
    before = len(server.requests)
    again = run_here(
        args[:-2] if rubric == "fastchat-pair" else args, env=_env(server, mt_bench_dir, tmp_path)
    )
    assert again.returncode == 0 and len(server.requests) == before  # all cached
    assert _got(json.loads(again.stdout)) == expected(data, rubric)


def test_the_table_sets_the_published_figures_beside(
    mt_bench_dir: Path, server: JudgeServer, tmp_path: Path
) -> None:
    folder = write_dataset(tmp_path / "votes", rows(mt_bench_dir))
    server.responder = pair_reply
    args = ["langadapt", "judge-agreement", "--data", str(folder), "--limit", "4", "--seed", "3"]
    proc = run_here(args, env=_env(server, mt_bench_dir, tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "votes: 4 of 10 expert votes (a sample drawn with seed 3)" in out
    # Zheng et al. 2023, Table 2: turn 1 GPT-4 pair / single / human-human.
    assert "| 66% (1343) | 60% (1280) | 63% (721) |" in out
    assert "| 85% (859) | 85% (739) | 81% (479) |" in out
    assert "| 85% (864) | 84% (776) | 82% (474) |" in out
    assert len(server.requests) <= 8 and len(server.requests) % 2 == 0
    s1 = [re.search(rf"\| {t} \| S1 \(with ties\) \| \S+ \((\d+)\)", out) for t in (1, 2)]
    assert sum(int(m.group(1)) for m in s1) == 4  # every sampled vote compared once


def test_unscored_pairs_are_not_counted_and_fail_the_run(
    mt_bench_dir: Path, server: JudgeServer, tmp_path: Path
) -> None:
    folder = write_dataset(tmp_path / "votes", rows(mt_bench_dir))
    server.responder = lambda body, n: (
        Reply("no verdict here") if "alpaca" in prompt_of(body) else pair_reply(body, n)
    )
    args = ["langadapt", "judge-agreement", "--data", str(folder), "--json"]
    proc = run_here(args, env=_env(server, mt_bench_dir, tmp_path))
    assert proc.returncode == 1 and "3 of 5 pairs are unscored" in proc.stderr
    report = json.loads(proc.stdout)
    assert _got(report)["turn1/S1"]["judge"] == [1, 2]  # only gpt-4 vs llama is counted
    assert (
        run_here([*args, "--allow-unscored"], env=_env(server, mt_bench_dir, tmp_path)).returncode
        == 0
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"winner": "model_c"}, "row 3: winner 'model_c' is none of model_a, model_b, tie"),
        ({"turn": 3}, "row 3: turn must be 1 or 2"),
        ({"conversation_b": [{"role": "user", "content": "q"}]}, "row 3 conversation_b: the "
         "conversation has no turn 1"),
    ],
)  # fmt: skip
def test_a_bad_row_is_named(
    change: dict, message: str, mt_bench_dir: Path, server: JudgeServer, tmp_path: Path
) -> None:
    data = rows(mt_bench_dir)
    data[2].update(change)
    folder = write_dataset(tmp_path / "votes", data)
    proc = run_here(
        ["langadapt", "judge-agreement", "--data", str(folder)],
        env=_env(server, mt_bench_dir, tmp_path),
    )
    assert proc.returncode == 2 and message in proc.stderr
    assert "human-00000-of-00001" in proc.stderr and not server.requests


def test_fastchats_json_file_and_no_hub(
    mt_bench_dir: Path, server: JudgeServer, tmp_path: Path
) -> None:
    """FastChat's human_judgments.json (the same rows as a JSON list) reads as the parquet;
    with the Hub off and no --data, the error says how to give a local copy."""
    data = rows(mt_bench_dir)
    path = tmp_path / "human_judgments.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    server.responder = pair_reply
    env = _env(server, mt_bench_dir, tmp_path)
    proc = run_here(["langadapt", "judge-agreement", "--data", str(path), "--json"], env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _got(json.loads(proc.stdout)) == expected(data, "fastchat-pair")
    proc = run_here(["langadapt", "judge-agreement"], env=env)
    assert proc.returncode == 2 and "--data" in proc.stderr and "HF_HUB_OFFLINE" in proc.stderr
