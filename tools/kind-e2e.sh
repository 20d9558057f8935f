#!/usr/bin/env bash
# The whole product on a kind cluster: build the images, create the cluster from
# kind-config.yaml, load the images, helm install the operator, put the digits data on a
# claim, submit the digits example and wait for Complete. Needs docker, kind, kubectl, helm
# and a registry to pull python:3.11-slim from. On failure it dumps the operator's logs,
# the pods' logs and the events.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=parallelrunstep
TAG=0.1.0
DATA=/tmp/parallelrunstep-kind-data
PRS=${PRS:-.venv/bin/prs}
PYTHON=${PYTHON:-.venv/bin/python}

dump() {
  echo "--- kind-e2e failed; operator logs, pod logs and events follow" >&2
  kubectl -n prs-system logs deployment/prs-parallelrun-operator --tail=200 >&2 || true
  for pod in $(kubectl -n default get pods -o name 2>/dev/null); do
    echo "--- $pod" >&2
    kubectl -n default logs "$pod" --tail=50 >&2 || true
  done
  kubectl get events -A --sort-by=.lastTimestamp >&2 || true
  kubectl -n default get prs,jobs,pods -o wide >&2 || true
}
trap dump ERR

docker build -f runner-image/Dockerfile -t parallelrunstep/runner:$TAG .
docker build -f operator/Dockerfile -t parallelrunstep/operator:$TAG .
docker build -f examples/digits/Dockerfile -t parallelrunstep/digits:$TAG examples/digits

mkdir -p "$DATA"
"$PYTHON" examples/digits/prepare.py
rm -rf "$DATA/digits" "$DATA/models" "$DATA/out"
cp -r examples/digits/data/digits examples/digits/models "$DATA/"
mkdir -p "$DATA/out" && chmod 777 "$DATA/out"  # runner pods write as uid 10001

kind get clusters | grep -qx "$CLUSTER" || kind create cluster --config kind-config.yaml
kind load docker-image --name "$CLUSTER" \
  parallelrunstep/runner:$TAG parallelrunstep/operator:$TAG parallelrunstep/digits:$TAG

helm upgrade --install prs helm/parallelrun-operator -n prs-system --create-namespace \
  --set image.repository=parallelrunstep/operator --set image.tag=$TAG \
  --set image.pullPolicy=IfNotPresent \
  --set runnerImage.repository=parallelrunstep/runner --set runnerImage.tag=$TAG --wait

kubectl apply -f - <<YAML
apiVersion: v1
kind: PersistentVolume
metadata: {name: prs-data}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteMany]
  storageClassName: prs-data
  hostPath: {path: /prs-data, type: Directory}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: default}
spec:
  accessModes: [ReadWriteMany]
  storageClassName: prs-data
  volumeName: prs-data
  resources: {requests: {storage: 1Gi}}
YAML

kubectl delete prs predict-digits -n default --ignore-not-found --wait
"$PRS" submit examples/digits/cluster-step.yaml -n default --set image=parallelrunstep/digits:$TAG
kubectl wait --for=condition=Complete prs/predict-digits -n default --timeout=15m
kubectl get prs -n default
head -5 "$DATA/out/predict-digits/parallel_run_step.txt"
"$PYTHON" examples/digits/accuracy.py "$DATA/out/predict-digits/parallel_run_step.txt"
