#!/usr/bin/env bash
# langadapt-train vs `trl sft` on a GPU machine without internet (bench/train_vs_trl.py).
#
#   bench/gpu_train_vs_trl.sh prepare DATA_FILE   # here, with internet: wheels, data, tokenizer
#   bench/gpu_train_vs_trl.sh run [OPTIONS]       # on the GPU machine, from the repo root
#
# `prepare` fills .whl/ (bitsandbytes, trl, datasets and their small dependencies, for
# CPython 3.12 on x86_64 Linux) and .benchdata/ (the SFT data file and the SmolLM2 tokenizer).
# `run` installs the wheels into /tmp/site and runs the benchmark; results go to $OUT
# (default out/train-vs-trl). OPTIONS go to bench/train_vs_trl.py (--layers, --steps, ...).
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=(bitsandbytes==0.50.2 trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
        xxhash==3.6.0 liger-kernel==0.8.5)

case "${1:-}" in
prepare)
    data=${2:?usage: $0 prepare DATA_FILE}
    platforms=()
    for p in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
        platforms+=(--platform "${p}_x86_64")
    done
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp "${platforms[@]}" -d .whl "${WHEELS[@]}"
    mkdir -p .benchdata
    cp "$data" .benchdata/
    python3 -c "import sys; from transformers import AutoTokenizer; \
AutoTokenizer.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2])" \
        "$(langadapt models smollm2)" .benchdata/tokenizer
    du -sh .whl .benchdata
    ;;
run)
    shift
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
    data=$(ls .benchdata/*.json* | head -1)
    python3 bench/train_vs_trl.py --data "$data" --tokenizer .benchdata/tokenizer \
        --out "${OUT:-out/train-vs-trl}" --deadline "${DEADLINE:-540}" "$@"
    ;;
*)
    sed -n '2,10p' "$0"
    exit 2
    ;;
esac
