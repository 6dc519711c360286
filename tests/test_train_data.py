"""langadapt-train data: schema adapters, readers, mixes, bad rows, decontamination."""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from pathlib import Path

import pytest
import yaml

from langadapt_train.data import mix
from langadapt_train.data.sources import NAMED_SOURCES, SCHEMAS, DataFileError
from langadapt_train.decontam import Index, build_index, normalize, tokens

U, A = "user", "assistant"


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def schema_fixtures(root: Path) -> dict[str, Path]:
    """A few rows in each source schema, as the named sources publish them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root.mkdir(parents=True, exist_ok=True)
    files = {
        "firefly": write_jsonl(
            root / "firefly.jsonl",
            [
                {
                    "kind": "ClassicalChinese",
                    "input": "将下面句子翻译成现代文：学而时习之",
                    "target": "学习并且时常温习它。",
                },
                {
                    "kind": "Summary",
                    "input": "概括：今天天气很好，我们去公园散步。",
                    "target": "天气好，去公园散步。",
                },
            ],
        ),
        "aya": write_jsonl(
            root / "aya_tur.jsonl",
            [
                {
                    "inputs": "Türkiye'nin başkenti neresidir?",
                    "targets": "Ankara.",
                    "language": "Turkish",
                    "language_code": "tur",
                },
            ],
        ),
        "messages": write_jsonl(
            root / "no_robots_tr.jsonl",
            [
                {
                    "prompt": "Bir şiir yaz.",
                    "prompt_id": "x1",
                    "category": "Generation",
                    "messages": [
                        {"role": "system", "content": "Kısa yaz."},
                        {"role": "user", "content": "Bir şiir yaz."},
                        {"role": "assistant", "content": "Deniz mavi, gök mavi."},
                    ],
                },
            ],
        ),
        "sharegpt": write_jsonl(
            root / "sharegpt.jsonl",
            [
                {
                    "conversations": [
                        {"from": "human", "value": "你好"},
                        {"from": "gpt", "value": "你好！"},
                        {"from": "human", "value": "再见"},
                        {"from": "gpt", "value": "再见！"},
                    ]
                },
                {"conversations": ["LIMA tarzı soru?", "LIMA tarzı cevap."], "source": "lima"},
            ],
        ),
        "alpaca": root / "alpaca_tr.json",
        "turkish-alpaca": write_csv(
            root / "turkish_instructions.csv",
            ["Unnamed: 0", " talimat", " giriş", " çıktı"],
            [["0", "Bir renk söyle.", "", "Kırmızı."], ["1", "Topla.", "2 ve 3", "5"]],
        ),
    }
    files["alpaca"].write_text(
        json.dumps(
            [
                {"instruction": "Bir sayı söyle.", "input": "", "output": "Yedi."},
                {"instruction": "Çevir:", "input": "hello", "output": "merhaba"},
            ],
            ensure_ascii=False,
        ),
        "utf-8",
    )
    pq.write_table(
        pa.Table.from_pylist(
            [
                {
                    "messages": [
                        {"role": "user", "content": "Parquet soru"},
                        {"role": "assistant", "content": "Parquet cevap"},
                    ]
                },
            ]
        ),
        root / "openai.parquet",
    )
    files["parquet"] = root / "openai.parquet"
    return files


def test_every_schema_becomes_a_conversation(tmp_path: Path) -> None:
    files = schema_fixtures(tmp_path)
    expected = {
        "firefly": [
            [(U, "将下面句子翻译成现代文：学而时习之"), (A, "学习并且时常温习它。")],
            [(U, "概括：今天天气很好，我们去公园散步。"), (A, "天气好，去公园散步。")],
        ],
        "aya": [[(U, "Türkiye'nin başkenti neresidir?"), (A, "Ankara.")]],
        "messages": [[("system", "Kısa yaz."), (U, "Bir şiir yaz."), (A, "Deniz mavi, gök mavi.")]],
        "sharegpt": [
            [(U, "你好"), (A, "你好！"), (U, "再见"), (A, "再见！")],
            [(U, "LIMA tarzı soru?"), (A, "LIMA tarzı cevap.")],
        ],
        "alpaca": [
            [(U, "Bir sayı söyle."), (A, "Yedi.")],
            [(U, "Çevir:\n\nhello"), (A, "merhaba")],
        ],
        "turkish-alpaca": [
            [(U, "Bir renk söyle."), (A, "Kırmızı.")],
            [(U, "Topla.\n\n2 ve 3"), (A, "5")],
        ],
        "parquet": [[(U, "Parquet soru"), (A, "Parquet cevap")]],
    }
    for schema, path in files.items():
        spec = mix.resolve(str(path))  # schema detected from the columns
        built = mix.build(spec, index=None)
        got = sorted([[(m["role"], m["content"]) for m in conv] for conv in built.train])
        assert got == sorted(expected[schema]), schema
        assert built.sources[0].schema == ("messages" if schema == "parquet" else schema)


def test_named_sources_use_known_schemas() -> None:
    assert NAMED_SOURCES["firefly"].hub_id == "YeungNLP/firefly-train-1.1M"
    assert NAMED_SOURCES["firefly"].schema == "firefly" and NAMED_SOURCES["firefly"].confirmed
    for source in NAMED_SOURCES.values():
        assert source.schema in SCHEMAS
    tr = {s.hub_id for s in NAMED_SOURCES.values() if s.language == "tr"}
    assert tr == {
        "sayhan/aya-dataset-tur",
        "beratcmn/no-robots-turkish",
        "beratcmn/lima-tr",
        "merve/turkish-instructions",
        "parsak/alpaca-tr-9k-longest",
    }


def test_shipped_mixes_match_the_study() -> None:
    zh, tr = mix.resolve("zh-mix"), mix.resolve("tr-mix")
    assert [s.hub for s in zh.sources] == ["YeungNLP/firefly-train-1.1M"]
    assert sum(s.cap for s in zh.sources) == 50_000
    assert len(tr.sources) == 5 and sum(s.cap for s in tr.sources) == 15_000
    assert zh.system_prompt and tr.system_prompt and zh.language == "zh" and tr.language == "tr"


def test_mix_caps_weights_dedup_heldout_and_system_prompt(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "a.jsonl",
        [{"instruction": f"soru {i}", "output": f"cevap {i}"} for i in range(40)],
    )
    write_jsonl(
        tmp_path / "b.jsonl",
        [{"inputs": f"q {i}", "targets": f"a {i}"} for i in range(40)]
        + [{"inputs": "SORU  0", "targets": "cevap 0"}],
    )
    # One exact duplicate across sources (after whitespace/case normalisation).
    (tmp_path / "c.jsonl").write_text(
        json.dumps({"instruction": "Soru 0", "output": "Cevap 0"}) + "\n", "utf-8"
    )
    spec_file = tmp_path / "m.yaml"
    spec_file.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "system_prompt": "Sen bir asistansın.",
                "seed": 3,
                "size": 30,
                "heldout": 5,
                "sources": [
                    {"path": "a.jsonl", "weight": 2},
                    {"path": "b.jsonl", "weight": 1},
                    {"path": "c.jsonl", "schema": "alpaca"},
                ],
            }
        ),
        "utf-8",
    )
    built = mix.build(mix.resolve(str(spec_file)), None)
    by_name = {r.name: r for r in built.sources}
    assert by_name["a"].selected == 20 and by_name["b"].selected == 10  # 2:1 shares of 30
    assert by_name["c"].duplicates == 1 and by_name["c"].selected == 0
    assert len(built.heldout) == 5 and len(built.train) == 25
    assert all(
        conv[0] == {"role": "system", "content": "Sen bir asistansın."}
        for conv in built.train + built.heldout
    )
    # Same seed, same mix; another seed, another order.
    again = mix.build(mix.resolve(str(spec_file)), None)
    assert again.train == built.train
    spec = mix.resolve(str(spec_file))
    spec.seed = 4
    assert mix.build(spec, None).train != built.train


def test_held_out_rows_are_never_trained_on_even_without_dedup(tmp_path: Path) -> None:
    """With dedup off, a conversation repeated in the data could fall on both sides of the
    split; its training copies are left out, so no held-out text is trained on."""
    rows = [{"instruction": f"soru {i % 6}", "output": f"cevap {i % 6}"} for i in range(30)]
    write_jsonl(tmp_path / "a.jsonl", rows)
    spec_file = tmp_path / "m.yaml"
    spec_file.write_text(
        yaml.safe_dump(
            {"name": "t", "seed": 1, "heldout": 2, "dedup": False, "sources": [{"path": "a.jsonl"}]}
        ),
        "utf-8",
    )
    built = mix.build(mix.resolve(str(spec_file)), None)
    held = {m["content"] for conv in built.heldout for m in conv if m["role"] == "assistant"}
    trained = {m["content"] for conv in built.train for m in conv}
    assert len(held) == 2 and not held & trained
    assert built.heldout_copies == 8 and len(built.train) == 30 - 2 - 8  # 5 copies of each


def test_bad_rows_are_counted_by_reason(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "rows.jsonl",
        [
            {"instruction": "ok", "output": "fine"},
            {"instruction": "no output"},
            {"instruction": "", "output": "empty instruction"},
            {"instruction": "  ", "output": "blank instruction"},
            {"instruction": "null output", "output": None},
            {"instruction": ["not", "text"], "output": "x"},
        ],
    )
    built = mix.build(mix.resolve(str(path)), None)
    report = built.sources[0]
    assert report.rows == 6 and report.selected == 1
    assert dict(report.bad) == {
        "missing field 'output'": 1,
        "empty field 'instruction'": 2,
        "empty field 'output'": 1,
        "field 'instruction' is not text": 1,
    }
    conv = write_jsonl(
        tmp_path / "conv.jsonl",
        [
            {"messages": [{"role": "user", "content": "hi"}]},
            {"messages": [{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}]},
            {"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "x"}]},
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
        ],
    )
    report = mix.build(mix.resolve(str(conv)), None).sources[0]
    assert dict(report.bad) == {
        "no assistant turn": 1,
        "unknown role 'robot'": 1,
        "empty message content": 1,
    }


@pytest.mark.parametrize(
    "name,content,line",
    [
        (
            "broken.jsonl",
            '{"instruction": "a", "output": "b"}\n\n{"instruction": "c", "output":\n',
            3,
        ),
        (
            "broken.json",
            '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c" "output"}\n]',
            3,
        ),
        ("broken.csv", "instruction,output\na,b\nc,d,e\n", 3),
        ("broken.parquet", "not parquet", 1),
    ],
)
def test_unparseable_file_names_file_and_line(
    tmp_path: Path, name: str, content: str, line: int
) -> None:
    path = tmp_path / name
    path.write_text(content, "utf-8")
    with pytest.raises(DataFileError, match=rf"{path.name}, line {line}\b"):
        mix.build(mix.resolve(str(path)), None)


def test_mix_spec_errors_name_the_key(tmp_path: Path) -> None:
    spec = tmp_path / "m.yaml"
    for data, key in [
        ({"sources": [{"path": "x.jsonl"}], "shuffle": True}, "shuffle"),
        ({"sources": [{"path": "x.jsonl", "cap": -1}]}, "cap"),
        ({"sources": [{"path": "x.jsonl", "schema": "dolly"}]}, "schema"),
        ({"sources": [{"path": "x.jsonl", "weigth": 1}]}, "weigth"),
    ]:
        spec.write_text(yaml.safe_dump(data), "utf-8")
        with pytest.raises(mix.MixError, match=key):
            mix.resolve(str(spec))
    with pytest.raises(mix.MixError, match="'data'"):
        mix.resolve("no-such-mix")


def test_normalisation_and_tokens() -> None:
    assert tokens("Hello, World!  你好。") == ["hello", "world", "你", "好"]
    assert normalize("ＡＢＣ") == "abc"  # NFKC folds full-width letters


@pytest.fixture(scope="module")
def eval_index(cmmlu_dir: Path, mt_bench_dir: Path) -> Index:
    return build_index(13, str(cmmlu_dir), str(mt_bench_dir))


def test_decontamination_drops_a_planted_cmmlu_question(
    tmp_path: Path, cmmlu_dir: Path, eval_index: Index
) -> None:
    import pandas as pd

    from langadapt_tasks.benchmarks.cmmlu import read_csv

    question = read_csv(cmmlu_dir / "test" / "agronomy.csv")[5]["Question"]
    # Planted with different punctuation / spacing: normalisation must still catch it.
    planted = " ".join(question.replace("，", ",").replace("。", "."))
    mt_question = json.loads(
        (Path(cmmlu_dir).parent / "mt_bench" / "zh" / "question.jsonl")
        .read_text("utf-8")
        .splitlines()[0]
    )["turns"][0]
    rows = [
        {"instruction": "请回答下面的问题。", "input": planted, "output": "答案是A。"},
        {"instruction": mt_question, "output": "好的。"},
        {"instruction": "写一首关于春天的短诗。", "output": "春风吹绿了江南岸。"},
    ]
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    built = mix.build(mix.resolve(str(path)), eval_index)
    assert [c[0]["content"] for c in built.train] == ["写一首关于春天的短诗。"]
    assert built.sources[0].contaminated == 2
    hits = sorted(d["eval_item"] for d in built.dropped)
    assert hits[0].startswith("cmmlu:agronomy/test#5") and hits[1].startswith("mt_bench:zh#")
    # One item per CMMLU row (dev and test, as pandas reads them) and per MT-Bench turn.
    assert eval_index.sources == {
        "cmmlu": sum(len(pd.read_csv(p, index_col=0)) for p in cmmlu_dir.glob("*/*.csv")),
        **{f"mt_bench:{lang}": mtbench_turns(path) for lang, path in question_files(cmmlu_dir)},
    }


def mtbench_turns(path: Path) -> int:
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    return sum(len(r["turns"]) for r in rows)


def question_files(cmmlu_dir: Path) -> list[tuple[str, Path]]:
    """MT-Bench's question files: the data directory's en and zh, the shipped tr."""
    from langadapt_tasks.benchmarks.mtbench import PACKAGE_DIR

    mt_bench = cmmlu_dir.parent / "mt_bench"
    return [(lang, mt_bench / lang / "question.jsonl") for lang in ("en", "zh")] + [
        ("tr", PACKAGE_DIR / "tr" / "question.jsonl")
    ]


def _spec_tokens(text: str) -> tuple[str, ...]:
    """The documented tokens (decontam.py's docstring), written out here: NFKC, case-folded,
    punctuation/symbols/separators/controls as spaces; one token per CJK, kana or Hangul
    character, else one per run of the other characters."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(ch)[0] in "PSZC" else ch for ch in text)
    cjk = (  # CJK radicals and punctuation, kana, bopomofo, ideographs, Hangul, compatibility
        r"\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff"
        r"\uac00-\ud7af\uf900-\ufaff"
    )
    return tuple(re.findall(rf"[{cjk}]|[^\s{cjk}]+", text))


def test_decontamination_keeps_unrelated_rows(
    sft_dir: Path, cmmlu_dir: Path, eval_index: Index
) -> None:
    rows = json.loads((sft_dir / "alpaca_zh_demo.json").read_text("utf-8"))[:200]
    texts = [f"{r['instruction']}\n{r['input']}\n{r['output']}" for r in rows]
    kept = [r for r, text in zip(rows, texts, strict=True) if not eval_index.match(text)]
    # Expected, straight from the data files: a row is dropped when it shares 13 tokens in a
    # row with a CMMLU question and its options, or an MT-Bench turn (a shorter one whole).
    evals = [
        " ".join(row[c] for c in ("Question", "A", "B", "C", "D"))
        for path in cmmlu_dir.glob("*/*.csv")
        for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline=""))
    ]
    for _, path in question_files(cmmlu_dir):
        for line in path.read_text("utf-8").splitlines():
            evals += json.loads(line)["turns"] if line.strip() else []
    row_tokens = [_spec_tokens(text) for text in texts]
    grams = {t[i : i + 13] for t in row_tokens for i in range(len(t) - 12)}
    joined = ["\x1f" + "\x1f".join(t) + "\x1f" for t in row_tokens]
    hit_grams, short = set(), []
    for text in evals:
        toks = _spec_tokens(text)
        if len(toks) < 13:
            short.append("\x1f" + "\x1f".join(toks) + "\x1f")
        hit_grams |= {toks[i : i + 13] for i in range(len(toks) - 12)} & grams
    dropped = [
        i
        for i, (toks, text) in enumerate(zip(row_tokens, joined, strict=True))
        if any(toks[j : j + 13] in hit_grams for j in range(len(toks) - 12))
        or any(s in text for s in short if s != "\x1f\x1f")
    ]
    assert [r for i, r in enumerate(rows) if i not in dropped] == kept
    assert len(dropped) == 1  # a longest-common-substring algorithm: MT-Bench's question 124


def test_missing_eval_sets_are_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from langadapt_train.decontam import DecontamError

    with pytest.raises(DecontamError, match="no CMMLU CSV"):
        build_index(13, str(tmp_path), None)


def test_ngram_index_long_and_short_items() -> None:
    from langadapt_tasks.benchmarks.eval_questions import EvalQuestion

    index = Index(5)
    index.add(EvalQuestion("cmmlu:x/test#0", "The quick brown fox jumps over the lazy dog"))
    index.add(EvalQuestion("mt_bench:zh#1.1", "写诗"))  # shorter than n: must appear whole
    assert index.match("he said: the QUICK brown fox, jumps!")[0] == "cmmlu:x/test#0"
    assert index.match("quick brown fox jumped") is None  # only 3 of the 5 tokens in a row
    assert index.match("请你写诗一首")[0] == "mt_bench:zh#1.1"
    assert index.match("请你写一首诗") is None
    assert index.sources == {"cmmlu": 1, "mt_bench:zh": 1}


# --- issue 10 item 7: nothing dropped silently by the readers -------------------------------


def test_csv_unclosed_quote_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    lines = ["instruction,output"] + [f"soru {i},cevap {i}" for i in range(7)]
    lines[4] = 'soru 3,"cevap 3'  # the quote is never closed: it would swallow the rest
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    with pytest.raises(DataFileError, match=r"rows\.csv, line 5\b"):
        mix.build(mix.resolve(str(path)), None)


def test_csv_rows_match_the_records_of_the_file(tmp_path: Path) -> None:
    # Quoted cells with line breaks, commas and doubled quotes: one record each.
    rows = [[f'soru {i}\nikinci satır, "alıntı"', f"cevap {i}"] for i in range(7)]
    path = write_csv(tmp_path / "rows.csv", ["instruction", "output"], rows)
    built = mix.build(mix.resolve(str(path)), None)
    assert built.sources[0].rows == 7 and len(built.train) == 7
    assert sorted(c[0]["content"] for c in built.train)[0] == 'soru 0\nikinci satır, "alıntı"'


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json"])
def test_utf8_bom_is_accepted(tmp_path: Path, suffix: str) -> None:
    body = {
        ".csv": "instruction,output\nBir renk söyle.,Kırmızı.\n",
        ".jsonl": '{"instruction": "Bir renk söyle.", "output": "Kırmızı."}\n',
        ".json": '[{"instruction": "Bir renk söyle.", "output": "Kırmızı."}]',
    }[suffix]
    path = tmp_path / f"bom{suffix}"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    built = mix.build(mix.resolve(str(path)), None)
    assert built.sources[0].schema == "alpaca"
    assert built.train == [
        [
            {"role": "user", "content": "Bir renk söyle."},
            {"role": "assistant", "content": "Kırmızı."},
        ]
    ]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json"])
def test_non_utf8_file_is_an_error_naming_the_file(tmp_path: Path, suffix: str) -> None:
    body = {
        ".csv": "instruction,output\nok,fine\nBir renk söyle.,Kırmızı.\n",
        ".jsonl": '{"instruction": "ok", "output": "fine"}\n'
        '{"instruction": "Bir renk söyle.", "output": "Kırmızı."}\n',
        ".json": '[{"instruction": "ok", "output": "fine"},\n'
        '{"instruction": "Bir renk söyle.", "output": "Kırmızı."}]',
    }[suffix]
    path = tmp_path / f"latin{suffix}"
    path.write_bytes(body.encode("iso-8859-9"))  # Turkish Latin-5, not UTF-8
    with pytest.raises(DataFileError, match=rf"latin\{suffix}, line \d+: not UTF-8"):
        mix.build(mix.resolve(str(path)), None)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_csv_and_jsonl_accept_the_same_large_fields(tmp_path: Path, suffix: str) -> None:
    answer = "uzun cevap " * 30_000  # 330,000 characters: over csv's default field limit
    if suffix == ".csv":
        path = write_csv(tmp_path / "big.csv", ["instruction", "output"], [["soru", answer]])
    else:
        path = write_jsonl(tmp_path / "big.jsonl", [{"instruction": "soru", "output": answer}])
    built = mix.build(mix.resolve(str(path)), None)
    assert built.train[0][1]["content"] == answer.strip()


# --- issue 10 item 11: a wrong schema is an error, not 0 rows ------------------------------


def test_zero_usable_rows_names_source_columns_found_and_expected(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "aya.jsonl",
        [{"instruction": f"soru {i}", "response": f"cevap {i}"} for i in range(5)],
    )
    spec = tmp_path / "m.yaml"
    spec.write_text(
        yaml.safe_dump({"sources": [{"name": "aya-tur", "path": "aya.jsonl"}]}), "utf-8"
    )
    with pytest.raises(DataFileError) as err:
        mix.build(mix.resolve(str(spec)), None)
    message = str(err.value)
    assert "'aya-tur'" in message and "0 usable rows of 5" in message
    assert "columns found: ['instruction', 'response']" in message
    assert "columns expected: ['inputs', 'targets']" in message
