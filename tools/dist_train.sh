#!/usr/bin/env bash
# Multi-process training on one or more nodes with torchrun:
#
#   tools/dist_train.sh CONFIG GPUS [tools/train.py options]
#
# GPUS is the number of processes of this node. Environment: NNODES (1), NODE_RANK (0),
# PORT (29500), MASTER_ADDR (127.0.0.1), PYTHON (python). Without CUDA the processes train on
# CPU with gloo.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [tools/train.py options]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" --nproc_per_node="$GPUS" \
    "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "${@:3}"
