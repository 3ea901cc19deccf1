#!/usr/bin/env bash
# Testing on a Slurm cluster, one task per GPU:
#
#   tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [tools/test.py options]
#
# Environment: GPUS (8, tasks in all), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS (extra
# srun options), PYTHON (python).
set -euo pipefail
# shellcheck source=tools/_launch.sh
source "$(dirname "$0")/_launch.sh"
[ $# -ge 4 ] || usage "PARTITION JOB_NAME CONFIG CHECKPOINT [tools/test.py options]"
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
run_srun "$PARTITION" "$JOB_NAME" test.py "$CONFIG" "$CHECKPOINT" --launcher=slurm "${@:5}"
