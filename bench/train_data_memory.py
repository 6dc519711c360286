"""Host memory of preparing the training rows: on disk (langadapt-train) against in memory.

    python bench/train_data_memory.py [--rows 8000] [--model DIR] [--max-length 1024]

``--rows`` generated Chinese conversations of a few hundred to a thousand tokens (the study's
50k-row Chinese mix is of this kind) are read, tokenized and masked by langadapt-train's own
code, twice, each time in a fresh process:

- **on disk**: ``trainer.prepare_data``, which writes each row to a memory-mapped Arrow file
  as soon as it is encoded (``langadapt_train/tokenized.py``);
- **in memory** (the baseline): the same rows encoded into Python lists, then
  ``datasets.Dataset.from_list`` — how earlier releases held them, and how a script that
  tokenizes before building its dataset holds them.

Printed per way: the peak resident memory while preparing and what is still resident after
(both above the process's memory just before), seconds, and the digest of the rows (the
two must be equal); then the ratios on disk / in memory. glibc's ``MALLOC_MMAP_THRESHOLD_`` is
fixed as in ``bench/train_vs_trl.py`` so that RSS follows the memory in use. Prints figures;
asserts nothing. The model (for its tokenizer) defaults to the embedded SmolLM2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from train_vs_trl import MMAP_THRESHOLD  # this folder's other bench: the same pinned heap

REPO = Path(__file__).resolve().parent.parent
WAYS = ("in memory", "on disk")
# Frequent Chinese characters: text that tokenizes to about one token a character.
CHARS = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下"
    "过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都"
    "两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重"
)


def status() -> dict[str, int]:
    """VmRSS / VmHWM of this process, MiB."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1]) // 1024
    return out


def write_rows(path: Path, count: int) -> None:
    rng = random.Random(0)
    with path.open("w", encoding="utf-8") as fh:
        for _ in range(count):
            length = rng.randrange(300, 900)
            question = "".join(rng.choice(CHARS) for _ in range(length // 3))
            answer = "".join(rng.choice(CHARS) for _ in range(length))
            row = {"instruction": question, "output": answer}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def measure(way: str, model: str, data: Path, max_length: int, work: Path) -> dict:
    """One way, in this process: prepare the rows and report its memory."""
    from langadapt_train import config, templates, trainer
    from langadapt_train.data import mix

    cfg = config.build(
        None,
        {
            "model_name_or_path": model,
            "output_dir": str(work / "run"),
            "data": str(data),
            "decontaminate": False,
            "heldout": 0,
            "max_length": max_length,
        },
    )
    tokenizer, chosen = trainer.load_tokenizer(cfg)
    with open("/proc/self/clear_refs", "w") as fh:  # the peak (VmHWM) from here on
        fh.write("5")
    before, started = status(), time.time()
    if way == "on disk":
        dataset, _, _ = trainer.prepare_data(cfg, tokenizer, chosen, work)
    else:
        from datasets import Dataset

        spec, prompt = mix.resolve(str(data)), cfg.script.system_prompt
        built = mix.build(spec, None, system_prompt=prompt, max_rows=None, heldout=0)
        rows = []
        for messages in built.train:
            enc = templates.encode(tokenizer, messages, max_length, True, chosen)
            if sum(enc["assistant_masks"]):
                rows.append({k: enc[k] for k in ("input_ids", "assistant_masks")})
        del built
        dataset = Dataset.from_list(rows)
        del rows
    seconds, after = time.time() - started, status()
    digest = hashlib.sha256()
    for row in dataset:
        digest.update(json.dumps(row, separators=(",", ":")).encode())
    tokens = sum(len(ids) for ids in dataset["input_ids"])
    return {
        "rows": dataset.num_rows,
        "tokens": tokens,
        "seconds": round(seconds, 1),
        "peak_mib": after["VmHWM"] - before["VmRSS"],
        "held_mib": after["VmRSS"] - before["VmRSS"],
        "sha256": digest.hexdigest(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--model", help="a model folder (its tokenizer); default: SmolLM2")
    parser.add_argument("--measure", choices=WAYS, help=argparse.SUPPRESS)  # the child
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model is None:
        from langadapt_tasks.study.models import materialize

        args.model = str(materialize("smollm2"))
    if args.measure:
        work = Path(args.work)
        result = measure(args.measure, args.model, work / "rows.jsonl", args.max_length, work)
        print(json.dumps(result))
        return 0

    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(MMAP_THRESHOLD), TQDM_DISABLE="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    results = {}
    with tempfile.TemporaryDirectory(prefix="train-data-memory-") as tmp:
        write_rows(Path(tmp) / "rows.jsonl", args.rows)
        for way in WAYS:
            work = Path(tmp) / way.replace(" ", "-")
            work.mkdir()
            (work / "rows.jsonl").symlink_to(Path(tmp) / "rows.jsonl")
            env["HF_DATASETS_CACHE"] = str(work / "hf-datasets")
            cmd = [sys.executable, __file__, "--measure", way, "--work", str(work)]
            cmd += ["--model", args.model, "--max-length", str(args.max_length)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if proc.returncode:
                print(f"!!! {way} failed:\n{proc.stderr[-3000:]}")
                return 1
            results[way] = json.loads(proc.stdout.strip().splitlines()[-1])
    first = results[WAYS[0]]
    print(f"{first['rows']} rows, {first['tokens']} tokens (max_length {args.max_length})\n")
    print("| way | peak MiB | still resident MiB | seconds |")
    print("|---|---:|---:|---:|")
    for way, r in results.items():
        print(f"| {way} | {r['peak_mib']} | {r['held_mib']} | {r['seconds']} |")
    disk, memory = results["on disk"], results["in memory"]
    print(
        f"\non disk / in memory: peak {disk['peak_mib'] / memory['peak_mib']:.2f}x, "
        f"still resident {disk['held_mib'] / max(memory['held_mib'], 1):.2f}x; "
        f"same rows: {disk['sha256'] == memory['sha256']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
