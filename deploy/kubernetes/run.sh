#!/bin/sh
# Apply the sharded Job, wait until it has ended (completed, or failed with some indexes given up),
# then run the merge Job and wait for it. Exit status: the merge's (0 all completed, 1 some failed, 3 parts that did not merge cleanly).
set -eu
here=$(cd "$(dirname "$0")" && pwd)

# wait_job NAME SECONDS: poll until the Job has a true Complete or Failed condition; prints which.
wait_job() {
    while :; do
        ended=$(kubectl get job "$1" \
            -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{"\n"}{end}' | grep -E '^(Complete|Failed)$' || true)
        [ -n "$ended" ] && { echo "$ended"; return; }
        sleep "$2"
    done
}

kubectl delete job comfykit-shards comfykit-merge --ignore-not-found
kubectl apply -f "$here/shards-job.yaml"
echo "comfykit-shards: $(wait_job comfykit-shards 10)"
kubectl apply -f "$here/merge-job.yaml"
state=$(wait_job comfykit-merge 5)
kubectl logs job/comfykit-merge
[ "$state" = "Complete" ]
