#!/usr/bin/env bash
# Runs mvl on every worker of a Cloud TPU pod slice: create the TPU VM, copy this
# checkout to all workers, install, then start the same command on all of them
# (`--distributed`: JAX finds the pod's workers itself).
#   TPU_NAME=mvl-v4 ZONE=us-central2-b ACCELERATOR=v4-32 \
#     launch/tpu_pod.sh [--dry-run] CONFIG WORKDIR [--config.key=value ...]
# WORKDIR must be visible to every worker (a gs:// bucket). CREATE=0 reuses an
# existing TPU VM; VERSION picks its software image. --dry-run prints every command.
# Before the run, every worker prints (process, local chips, all chips, chip kind);
# CHECK_ONLY=1 stops there. Whether a config fits: python -m mvl.compile --topology.
set -euo pipefail
dry_run=0
if [[ "${1:-}" == "--dry-run" ]]; then dry_run=1; shift; fi
if [[ $# -lt 2 ]]; then
  echo "usage: TPU_NAME=... ZONE=... ACCELERATOR=... launch/tpu_pod.sh [--dry-run] CONFIG WORKDIR [--config.key=value ...]" >&2
  exit 2
fi
config=$1 workdir=$2; shift 2
: "${TPU_NAME:?set TPU_NAME (the TPU VM to create or use)}"
: "${ZONE:?set ZONE (e.g. us-central2-b)}"
ACCELERATOR=${ACCELERATOR:-v4-32}
VERSION=${VERSION:-tpu-ubuntu2204-base}
CREATE=${CREATE:-1}
cd "$(dirname "$0")/.."

run() {
  if (( dry_run )); then printf '%q ' "$@"; echo; else "$@"; fi
}
on_all_workers() {
  run gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --worker=all --command "$1"
}

if (( CREATE )); then
  run gcloud compute tpus tpu-vm create "$TPU_NAME" --zone "$ZONE" \
    --accelerator-type "$ACCELERATOR" --version "$VERSION"
fi
run gcloud compute tpus tpu-vm scp --recurse --zone "$ZONE" --worker=all . "$TPU_NAME":~/mvl
JAX_VERSION=0.10.2  # mvl's jax (requirements.txt); jax[tpu] brings the libtpu it was built with
on_all_workers "cd ~/mvl && pip install -q -r requirements.txt 'jax[tpu]==$JAX_VERSION'"
# Every worker must see the whole slice (device_count) and its own chips before training.
on_all_workers "cd ~/mvl && python -c 'import jax; jax.distributed.initialize(); print(jax.process_index(), jax.local_device_count(), jax.device_count(), jax.devices()[0].device_kind)'"
if [[ "${CHECK_ONLY:-0}" == 1 ]]; then exit 0; fi
train=(python -m mvl.main --config "$config" --workdir "$workdir" --distributed "$@")
on_all_workers "cd ~/mvl && $(printf '%q ' "${train[@]}")"
