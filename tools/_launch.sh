# Sourced by tools/dist_{train,test}.sh and tools/slurm_{train,test}.sh (their headers list the
# environment variables): the torchrun and srun command lines that start a tool of this
# checkout, with the checkout first on PYTHONPATH.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# usage ARGUMENTS: print the script's usage and exit 2.
usage() {
    echo "usage: $0 $*" >&2
    exit 2
}

# run_torchrun NPROC TOOL ARGS...: tools/TOOL with ARGS in NPROC processes of this node.
run_torchrun() {
    local nproc=$1 tool=$2
    shift 2
    exec "${PYTHON:-python}" -m torch.distributed.run --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --master_port="${PORT:-29500}" --nproc_per_node="$nproc" "$ROOT/tools/$tool" "$@"
}

# run_srun PARTITION JOB_NAME TOOL ARGS...: tools/TOOL with ARGS in one Slurm task per GPU.
run_srun() {
    local partition=$1 job_name=$2 tool=$3
    local gpus_per_node=${GPUS_PER_NODE:-8}
    shift 3
    # SRUN_ARGS is split into words on purpose
    # shellcheck disable=SC2086
    exec srun -p "$partition" --job-name="$job_name" \
        --gres=gpu:"$gpus_per_node" --ntasks="${GPUS:-8}" --ntasks-per-node="$gpus_per_node" \
        --cpus-per-task="${CPUS_PER_TASK:-5}" --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
        "${PYTHON:-python}" -u "$ROOT/tools/$tool" "$@"
}
