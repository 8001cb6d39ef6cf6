#!/usr/bin/env bash
# Tokens/s of evalhub's hf adapter beside a hand-written transformers greedy loop (same model, prompts).
# On a CUDA machine: GPT-2 size, bf16.  With --cpu: a small model on CPU (proves the script runs).
# Extra flags go to bench/gpu_throughput.py (--prompts, --batch-size, --max-new-tokens, --size).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="${here}/..${PYTHONPATH:+:${PYTHONPATH}}"
exec "${PYTHON:-python3}" "${here}/gpu_throughput.py" "$@"
