#!/bin/bash
# Submit a manifest as N shards plus the merge that follows them:
#   deploy/slurm/submit.sh N MANIFEST OUTPUT [run options...]
# OUTPUT must be the manifest's output folder (its `output:` or the --output you pass), on a file
# system every node sees. Extra sbatch options go in SBATCH_ARGS (e.g. "--partition=gpu --gres=gpu:1")
# and, for at most M tasks at once, ARRAY_LIMIT=M. Prints: ARRAY_JOB_ID MERGE_JOB_ID
set -euo pipefail
N=${1:?usage: submit.sh N MANIFEST OUTPUT [run options]}
MANIFEST=${2:?manifest}
OUTPUT=${3:?output folder}
shift 3
here=$(cd "$(dirname "$0")" && pwd)
range="0-$((N - 1))${ARRAY_LIMIT:+%$ARRAY_LIMIT}"
# shellcheck disable=SC2086
array=$(COMFYKIT_SHARDS=$N sbatch --parsable ${SBATCH_ARGS:-} --array="$range" "$here/comfykit-array.sbatch" "$MANIFEST" "$@")
array=${array%%;*}
merge=$(sbatch --parsable --dependency=afterany:"$array" "$here/comfykit-merge.sbatch" "$OUTPUT")
echo "$array ${merge%%;*}"
