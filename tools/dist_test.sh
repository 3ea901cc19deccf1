#!/usr/bin/env bash
# Multi-process testing on one or more nodes with torchrun:
#
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py options]
#
# GPUS is the number of processes of this node. Environment: NNODES (1), NODE_RANK (0),
# PORT (29500), MASTER_ADDR (127.0.0.1), PYTHON (python). Without CUDA the processes run on
# CPU with gloo.
set -euo pipefail
# shellcheck source=tools/_launch.sh
source "$(dirname "$0")/_launch.sh"
[ $# -ge 3 ] || usage "CONFIG CHECKPOINT GPUS [tools/test.py options]"
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
run_torchrun "$GPUS" test.py "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
