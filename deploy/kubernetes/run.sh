#!/bin/sh
# Apply the sharded Job, wait until it has ended (completed, or failed with some indexes given up),
# then run the merge Job and wait for it. Exit status: the merge's (0 all completed, 1 some failed).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
kubectl delete job comfykit-shards comfykit-merge --ignore-not-found
kubectl apply -f "$here/shards-job.yaml"
while :; do
    ended=$(kubectl get job comfykit-shards \
        -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{"\n"}{end}' | grep -E '^(Complete|Failed)$' || true)
    [ -n "$ended" ] && break
    sleep 10
done
echo "comfykit-shards: $ended"
kubectl apply -f "$here/merge-job.yaml"
while :; do
    state=$(kubectl get job comfykit-merge \
        -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{"\n"}{end}' | grep -E '^(Complete|Failed)$' || true)
    [ -n "$state" ] && break
    sleep 5
done
kubectl logs job/comfykit-merge
[ "$state" = "Complete" ]
