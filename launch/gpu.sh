#!/usr/bin/env bash
# Runs mvl on one host with all its GPUs as one mesh (one process drives them all).
#   launch/gpu.sh [--dry-run] [--install] CONFIG WORKDIR [--config.key=value ...]
#   launch/gpu.sh configs/clip.py:paper /data/runs/clip --config.batch_size=1024
# --install first installs the CUDA build of jax. --dry-run prints every command.
# Several hosts: launch/slurm.sbatch, or mvl.main's --coordinator flags on each host.
set -euo pipefail
dry_run=0 install=0
while [[ "${1:-}" == --* ]]; do
  case $1 in
    --dry-run) dry_run=1 ;;
    --install) install=1 ;;
    *) break ;;
  esac
  shift
done
if [[ $# -lt 2 ]]; then
  echo "usage: launch/gpu.sh [--dry-run] [--install] CONFIG WORKDIR [--config.key=value ...]" >&2
  exit 2
fi
config=$1 workdir=$2; shift 2
cd "$(dirname "$0")/.."
run() {
  if (( dry_run )); then printf '%q ' "$@"; echo; else "$@"; fi
}
if (( install )); then
  run pip install -q -r requirements.txt 'jax[cuda12]'
fi
# XLA may take most of GPU memory up front (the default 75% leaves room for nothing
# else); the latency-hiding scheduler overlaps collectives with compute.
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}
export XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_enable_latency_hiding_scheduler=true"
if (( dry_run )); then
  echo "XLA_PYTHON_CLIENT_MEM_FRACTION=$XLA_PYTHON_CLIENT_MEM_FRACTION XLA_FLAGS='$XLA_FLAGS'"
fi
run python -m mvl.main --config "$config" --workdir "$workdir" "$@"
