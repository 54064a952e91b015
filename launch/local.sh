#!/usr/bin/env bash
# Runs mvl on this host with every local device (CPU cores or GPUs) as one mesh.
#   launch/local.sh [--dry-run] CONFIG WORKDIR [--config.key=value ...]
#   launch/local.sh configs/maskvlm.py:demo /tmp/mvl_maskvlm --config.total_steps=600
# --dry-run prints the command instead of running it. Other platforms:
# launch/tpu_pod.sh, launch/gpu.sh, launch/slurm.sbatch (each with --dry-run).
set -euo pipefail
dry_run=0
if [[ "${1:-}" == "--dry-run" ]]; then dry_run=1; shift; fi
if [[ $# -lt 2 ]]; then
  echo "usage: launch/local.sh [--dry-run] CONFIG WORKDIR [--config.key=value ...]" >&2
  exit 2
fi
config=$1 workdir=$2; shift 2
cd "$(dirname "$0")/.."
cmd=(python -m mvl.main --config "$config" --workdir "$workdir" "$@")
if (( dry_run )); then printf '%q ' "${cmd[@]}"; echo; else exec "${cmd[@]}"; fi
