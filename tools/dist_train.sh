#!/usr/bin/env bash
# Multi-process training on one or more nodes with torchrun:
#
#   tools/dist_train.sh CONFIG GPUS [tools/train.py options]
#
# GPUS is the number of processes of this node. Environment: NNODES (1), NODE_RANK (0),
# PORT (29500), MASTER_ADDR (127.0.0.1), PYTHON (python). Without CUDA the processes train on
# CPU with gloo.
set -euo pipefail
# shellcheck source=tools/_launch.sh
source "$(dirname "$0")/_launch.sh"
[ $# -ge 2 ] || usage "CONFIG GPUS [tools/train.py options]"
CONFIG=$1
GPUS=$2
run_torchrun "$GPUS" train.py "$CONFIG" --launcher pytorch "${@:3}"
