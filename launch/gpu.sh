#!/usr/bin/env bash
# Runs mvl on one host with all its GPUs as one mesh (one process drives them all).
#   launch/gpu.sh [--dry-run] [--install] [--check] CONFIG WORKDIR [--config.key=value ...]
#   launch/gpu.sh configs/clip.py:paper /data/runs/clip --config.batch_size=1024
# --install first installs the CUDA build of mvl's jax version. Every run first checks
# that JAX sees this host's GPUs (not the CPU fallback); --check stops after that.
# --dry-run prints every command. Whether a config fits: python -m mvl.compile --gpu.
# Several hosts: launch/slurm.sbatch, or mvl.main's --coordinator flags on each host.
set -euo pipefail
dry_run=0 install=0 check_only=0
JAX_VERSION=0.10.2  # mvl's jax (requirements.txt); the CUDA plugin must match it
while [[ "${1:-}" == --* ]]; do
  case $1 in
    --dry-run) dry_run=1 ;;
    --install) install=1 ;;
    --check) check_only=1 ;;
    *) break ;;
  esac
  shift
done
if [[ $# -lt 2 ]]; then
  echo "usage: launch/gpu.sh [--dry-run] [--install] [--check] CONFIG WORKDIR [--config.key=value ...]" >&2
  exit 2
fi
config=$1 workdir=$2; shift 2
cd "$(dirname "$0")/.."
run() {
  if (( dry_run )); then printf '%q ' "$@"; echo; else "$@"; fi
}
if (( install )); then
  run pip install -q -r requirements.txt "jax[cuda12]==$JAX_VERSION"
fi
# A jax without its CUDA plugin silently trains on the CPU: refuse that first.
run python -c 'import jax; d = jax.devices(); print(len(d), "x", d[0].device_kind)
if d[0].platform != "gpu": raise SystemExit("launch/gpu.sh: JAX sees no GPU (" + d[0].platform + "): run with --install")'
if (( check_only )); then exit 0; fi
# XLA may take most of GPU memory up front (the default 75% leaves room for nothing
# else); the latency-hiding scheduler overlaps collectives with compute.
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}
export XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_enable_latency_hiding_scheduler=true"
if (( dry_run )); then
  echo "XLA_PYTHON_CLIENT_MEM_FRACTION=$XLA_PYTHON_CLIENT_MEM_FRACTION XLA_FLAGS='$XLA_FLAGS'"
fi
run python -m mvl.main --config "$config" --workdir "$workdir" "$@"
