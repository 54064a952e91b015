#!/usr/bin/env bash
# One short GPU benchmark: mvl's CLIP ViT-B/16 and MaskVLM (ViT-B/16 towers) train steps
# in bfloat16 (python -m mvl.bench: step time, examples/s, MFU against the datasheet peak,
# memory), and open_clip's CLIP step for the same architecture, batch and dtype on the same
# GPU (--compare open_clip; needs torch with CUDA and open_clip_torch).
#
#   bash launch/gpu_bench.sh [OUT_DIR]        # ~5 minutes on one H100 / H200
#
# Writes OUT_DIR/{env.txt, clip_b16.json, maskvlm_b16.json} (default /tmp/mvl_gpu_bench).
# Not yet measured: its first run (2026-12-04, one H200, jax 0.11.2) ran past its
# 520 s limit without a result; each part prints as it goes, so time them separately.
# Sizes: the :paper towers at 224 px with batch 256 (CLIP) / 64 (MaskVLM) per GPU, text
# context 77 (CLIP) and the config's own (MaskVLM); the step runs on one fixed batch, so
# input is not timed. The tokenizer is the demo sentencepiece trained from the embedded
# shapes captions (a small vocabulary): the MLM head's cost is below a 50k-vocabulary one.
set -uo pipefail
out="${1:-${OUT:-/tmp/mvl_gpu_bench}}"
work=$(mktemp -d /tmp/mvl_gpu_bench_work.XXXX)  # tokenizers etc.: kept out of OUT_DIR
mkdir -p "$out"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python - <<'PY'
import jax, flax, optax
print("jax", jax.__version__, "flax", flax.__version__, "optax", optax.__version__, jax.devices())
PY
} > "$out/env.txt" 2>&1
cat "$out/env.txt"
status=0
python -m mvl.bench --config configs/clip.py:paper --workdir "$work/clip" \
  --config.batch_size=256 --config.model.dtype=bfloat16 --config.data.max_text_len=77 \
  --steps 20 --compare open_clip --json "$out/clip_b16.json" || status=1
python -m mvl.bench --config configs/maskvlm.py:paper --workdir "$work/maskvlm" \
  --config.batch_size=64 --config.model.dtype=bfloat16 \
  --steps 10 --json "$out/maskvlm_b16.json" || status=1
exit $status
