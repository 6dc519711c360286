"""turkishmmlu_langadapt through the real lm_eval API (5-shot, made-up fixture) on the tiny
random Llama with SmolLM2's tokenizer: the prompts and the scoring are the protocol."""

from __future__ import annotations

import json
from pathlib import Path
from statistics import fmean

import pytest
from conftest import task_manager

from langadapt_tasks.benchmarks.scoring import TURKISHMMLU, format_views

GROUP = "turkishmmlu_langadapt"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "turkishmmlu"
SUBJECTS = {"religion_and_ethics": "Religion and Ethics", "mathematics": "Mathematics"}


def reference_prompt(shots: list[dict], doc: dict) -> str:
    """The TurkishMMLU authors' lm-eval prompt (``_turkishmmlu_default_yaml``), restated:
    ``Soru: {question.strip()}``, ``A. {choices[0]}`` ... ``E. {choices[4]}``, ``Cevap:``;
    a shot ends in " " + its letter; shots and question are joined by a blank line."""

    def block(row: dict) -> str:
        options = "".join(
            f"\n{letter}. {text}" for letter, text in zip("ABCDE", row["choices"], strict=True)
        )
        return f"Soru: {row['question'].strip()}{options}\nCevap:"

    return "".join(f"{block(s)} {s['answer']}\n\n" for s in shots) + block(doc)


@pytest.fixture(scope="module")
def run(tiny_llama_dir: Path) -> dict:
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=str(tiny_llama_dir), batch_size=1, device="cpu")
    calls: list[int] = []
    handle = lm.model.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    try:
        out = lm_eval.simple_evaluate(
            model=lm,
            tasks=[f"{GROUP}_{s}" for s in SUBJECTS],
            task_manager=task_manager(turkishmmlu_dir=str(FIXTURE)),
            log_samples=True,
        )
    finally:
        handle.remove()
    return {"out": out, "calls": calls}


def test_prompts_are_the_papers_five_shot_prompts(run: dict) -> None:
    samples = run["out"]["samples"]
    assert run["out"]["n-shot"] == {f"{GROUP}_{s}": 5 for s in SUBJECTS}
    for subject, title in SUBJECTS.items():
        rows = {
            split: json.loads((FIXTURE / split / f"TurkishMMLU_{title}.json").read_text("utf-8"))
            for split in ("dev", "test")
        }
        got = sorted(samples[f"{GROUP}_{subject}"], key=lambda s: s["doc_id"])
        assert len(got) == len(rows["test"]) == 3
        for sample, doc in zip(got, rows["test"], strict=True):
            expected = reference_prompt(rows["dev"][:5], doc)
            assert [a[0] for a in sample["arguments"]] == [expected] * 5
            assert [a[1] for a in sample["arguments"]] == [" A", " B", " C", " D", " E"]
            assert int(sample["target"]) == "ABCDE".index(doc["answer"])
    # One of them written out in full.
    first = sorted(samples[f"{GROUP}_mathematics"], key=lambda s: s["doc_id"])[0]
    assert first["arguments"][0][0] == (
        "Soru: 2 + 3 · 4 işleminin sonucu kaçtır?\nA. 14\nB. 20\nC. 24\nD. 11\nE. 9\nCevap: A\n\n"
        "Soru: Bir üçgenin iç açıları toplamı kaç derecedir?\nA. 90\nB. 180\nC. 270\nD. 360\n"
        "E. 540\nCevap: B\n\n"
        "Soru: 12 sayısının asal çarpanları hangileridir?\nA. 2 ve 3\nB. 3 ve 4\nC. 2 ve 6\n"
        "D. 1 ve 12\nE. 4 ve 6\nCevap: A\n\n"
        "Soru: x + 5 = 12 ise x kaçtır?\nA. 5\nB. 6\nC. 7\nD. 8\nE. 17\nCevap: C\n\n"
        "Soru: Bir karenin bir kenarı 4 cm ise alanı kaç cm²'dir?\nA. 8\nB. 12\nC. 16\nD. 20\n"
        "E. 24\nCevap: C\n\n"
        "Soru: $\\(\\mathrm{2^5}\\)$ ifadesinin değeri kaçtır?\nA. 10\nB. 16\nC. 25\nD. 32\n"
        "E. 64\nCevap:"
    )


def test_accuracy_is_the_mean_argmax_and_one_pass_per_question(run: dict) -> None:
    out = run["out"]
    per_subject = {}
    for subject in SUBJECTS:
        samples = out["samples"][f"{GROUP}_{subject}"]
        hits = []
        for sample in samples:
            loglikelihoods = [float(resp[0]) for resp in sample["filtered_resps"]]
            hits.append(float(loglikelihoods.index(max(loglikelihoods)) == int(sample["target"])))
        per_subject[subject] = fmean(hits)
        row = out["results"][f"{GROUP}_{subject}"]
        assert row["acc,none"] == pytest.approx(per_subject[subject])
        assert row["acc_norm,none"] == pytest.approx(per_subject[subject])  # one-letter choices
    # Five one-token choices after a shared context: one forward pass per question.
    assert run["calls"] == [1] * 6
    # The scoring command's paper view: the mean of the subjects.
    views = format_views(out, bench=TURKISHMMLU)
    assert views["leaderboard"]["average"]["score"] == pytest.approx(fmean(per_subject.values()))
    assert views["leaderboard"]["average"]["subjects"] == 2
    assert "(2/9 subjects)" in views["markdown"]


def test_scoring_command_prints_both_views(run: dict, tmp_path: Path, capsys) -> None:
    from langadapt_tasks.cli import main

    results = {k: run["out"][k] for k in ("results", "configs", "n-shot")}
    (tmp_path / "results_2026-01-01T00-00-00.json").write_text(json.dumps(results, default=str))
    assert main(["turkishmmlu-scores", str(tmp_path), "--json"]) == 0
    views = json.loads(capsys.readouterr().out)
    subjects = [run["out"]["results"][f"{GROUP}_{s}"]["acc,none"] for s in SUBJECTS]
    assert views["leaderboard"]["average"]["score"] == pytest.approx(fmean(subjects))
    assert views["leaderboard"]["math"] == {"score": subjects[1], "subjects": 1, "of": 1}
    assert main(["turkishmmlu-scores", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert table.startswith("| TurkishMMLU (acc) | lm-eval groups (size-weighted) | paper")
    assert "| Social Sciences and Humanities | – | " in table and "(1/4 subjects)" in table
    # The CMMLU command is unchanged: these are no CMMLU results.
    assert main(["cmmlu-scores", str(tmp_path)]) == 2
    assert "no cmmlu_langadapt scores" in capsys.readouterr().err
