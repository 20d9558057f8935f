#!/usr/bin/env bash
# The whole product on a kind cluster, with no registry: build the images on the local Debian
# base image, create the cluster from kind-config.yaml with the local node image of
# tools/build-kind-node.sh, load the images, helm install the operator, put the digits data on
# a claim, submit the digits example, wait for Complete and check the output's accuracy.
#
# Everything it runs is built here and cached: kind and crictl (tools/build-kind.sh), kubectl
# (tools/build-control-plane.sh), helm (tools/build-helm.sh), the node image, the base image
# (tools/build-base-image.sh); Docker is started by tools/start-docker.sh; the wheels of the
# images come from PyPI. When the Docker daemon cannot run --privileged containers (its
# bounding set lacks a capability), kind's docker calls go through tools/kind-docker/docker.
# The cluster, its kubeconfig (a temporary file: ~/.kube/config is left alone) and the shared
# data folder are removed at the end; KIND_E2E_KEEP=1 keeps them. On failure it dumps the
# operator's logs, the pods' logs and the events. Each phase's duration goes to stderr.
# Settings: KIND_E2E_TAG (image tag, default kind-e2e), PIP_CA (CA bundle handed to pip,
# default /etc/ssl/certs/ca-certificates.crt when it exists), PRS, PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=parallelrunstep
TAG=${KIND_E2E_TAG:-kind-e2e}
DATA=/tmp/parallelrunstep-kind-data  # kind-config.yaml mounts it on both workers
PRS=${PRS:-.venv/bin/prs}
PYTHON=${PYTHON:-.venv/bin/python}
PIP_CA=${PIP_CA:-/etc/ssl/certs/ca-certificates.crt}
KEEP=${KIND_E2E_KEEP:-0}

started=$SECONDS
phase_started=$SECONDS
phase() {  # phase NAME: log the previous phase's duration, start timing NAME
    echo "kind-e2e: $((SECONDS - phase_started))s" >&2
    echo "kind-e2e: --- $1" >&2
    phase_started=$SECONDS
}

echo "kind-e2e: --- tools and node image" >&2
tools/start-docker.sh >&2
kind_bin=$(tools/build-kind.sh | tail -n1)
cp_bin=$(tools/build-control-plane.sh | tail -n1)
helm_bin=$(dirname "$(tools/build-helm.sh | tail -n1)")
node_image=$(tools/build-kind-node.sh | tail -n1)
base_image=$(tools/build-base-image.sh | tail -n1)
export PATH="$kind_bin:$cp_bin:$helm_bin:$PATH"
grep -q "image: $node_image\$" kind-config.yaml \
    || { echo "kind-e2e: kind-config.yaml does not use $node_image" >&2; exit 1; }
if ! docker run --rm --privileged --entrypoint true "$node_image" 2>/dev/null; then
    echo "kind-e2e: this Docker daemon cannot run --privileged containers;" \
        "kind's docker calls go through tools/kind-docker/docker" >&2
    export PATH="$PWD/tools/kind-docker:$PATH"
fi
# kind mounts the host's /lib/modules in its nodes, and Docker creates it when missing
modules_existed=0
if [[ -e /lib/modules ]]; then modules_existed=1; fi
work=$(mktemp -d /tmp/parallelrunstep-kind-e2e.XXXXXX)
export KUBECONFIG="$work/kubeconfig"

dump() {
    echo "--- kind-e2e failed; operator logs, pod logs and events follow" >&2
    kubectl -n prs-system logs deployment/prs-parallelrun-operator --tail=200 >&2 || true
    for pod in $(kubectl -n default get pods -o name 2>/dev/null); do
        echo "--- $pod" >&2
        kubectl -n default logs "$pod" --tail=50 >&2 || true
    done
    kubectl get events -A --sort-by=.lastTimestamp >&2 || true
    kubectl get nodes -o wide >&2 || true
    kubectl get pods -A -o wide >&2 || true
    kubectl -n default get prs,jobs,pods -o wide >&2 || true
}
cleanup() {
    local status=$?
    if ((status != 0)); then dump; fi
    if [[ $KEEP == 1 ]]; then
        echo "kind-e2e: kept the cluster (KUBECONFIG=$KUBECONFIG) and $DATA" >&2
    else
        echo "kind-e2e: --- deleting the cluster" >&2
        kind delete cluster --name "$CLUSTER" >&2 || true
        # kind keeps its Docker network for later clusters; remove it when nothing uses it
        if [[ "$(docker network inspect kind --format '{{len .Containers}}' 2>/dev/null)" == 0 ]]; then
            docker network rm kind >/dev/null || true
        fi
        rm -rf "$work" "$DATA"
        if ((!modules_existed)); then rmdir /lib/modules 2>/dev/null || true; fi
    fi
    echo "kind-e2e: $((SECONDS - started))s in all, exit status $status" >&2
}
trap cleanup EXIT

phase "images (base $base_image)"
secret=()
if [[ -s $PIP_CA ]]; then secret=(--secret "id=pip-ca,src=$PIP_CA"); fi
export DOCKER_BUILDKIT=1
docker build --build-arg "BASE_IMAGE=$base_image" "${secret[@]}" \
    -f runner-image/Dockerfile -t "parallelrunstep/runner:$TAG" .
docker build --build-arg "BASE_IMAGE=$base_image" "${secret[@]}" \
    -f operator/Dockerfile -t "parallelrunstep/operator:$TAG" .
# examples/digits/Dockerfile's two lines, with pip given the CA bundle
mkdir "$work/empty"
docker build --build-arg "RUNNER_IMAGE=parallelrunstep/runner:$TAG" "${secret[@]}" \
    -f tests/images/digits.Dockerfile -t "parallelrunstep/digits:$TAG" "$work/empty"

phase "digits data in $DATA"
"$PYTHON" examples/digits/prepare.py
rm -rf "$DATA"
mkdir -p "$DATA"
cp -r examples/digits/data/digits examples/digits/models "$DATA/"
mkdir -p "$DATA/out" && chmod 777 "$DATA/out"  # runner pods write as uid 10001

phase "kind create cluster ($node_image)"
if kind get clusters | grep -qx "$CLUSTER"; then
    echo "kind-e2e: a cluster named $CLUSTER exists already; delete it first" >&2
    KEEP=1
    exit 1
fi
kind create cluster --config kind-config.yaml
# kind does not wait for the pod network (prs-kind-cni in each node) nor for CoreDNS
kubectl wait --for=condition=Ready nodes --all --timeout=5m
kubectl -n kube-system wait --for=condition=Available deployment/coredns --timeout=5m
kubectl get nodes -o wide

phase "kind load docker-image"
workers=$(kind get nodes --name "$CLUSTER" | grep -v control-plane | paste -sd, -)
kind load docker-image --name "$CLUSTER" --nodes "$workers" \
    "parallelrunstep/runner:$TAG" "parallelrunstep/operator:$TAG" "parallelrunstep/digits:$TAG"

phase "helm install"
helm upgrade --install prs helm/parallelrun-operator -n prs-system --create-namespace \
    --set image.repository=parallelrunstep/operator --set "image.tag=$TAG" \
    --set image.pullPolicy=IfNotPresent \
    --set runnerImage.repository=parallelrunstep/runner --set "runnerImage.tag=$TAG" \
    --set helmTest.namespace=default --set helmTest.claim=data --set helmTest.path=out --wait

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

phase "the digits step"
"$PRS" submit examples/digits/cluster-step.yaml -n default --set "image=parallelrunstep/digits:$TAG"
condition() {  # condition TYPE -> the step's condition status (True, False or empty)
    kubectl -n default get prs/predict-digits \
        -o jsonpath="{.status.conditions[?(@.type==\"$1\")].status}"
}
deadline=$((SECONDS + 900))
until [[ "$(condition Complete)" == True ]]; do
    if [[ "$(condition Failed)" == True ]] || ((SECONDS > deadline)); then
        kubectl -n default get prs/predict-digits -o jsonpath='{.status.conditions}' >&2
        echo >&2
        echo "kind-e2e: the step failed or did not complete within 15 minutes" >&2
        exit 1
    fi
    sleep 2
done
kubectl get prs -n default
kubectl -n default get pods -o wide
head -5 "$DATA/out/predict-digits/parallel_run_step.txt"
"$PYTHON" examples/digits/accuracy.py "$DATA/out/predict-digits/parallel_run_step.txt"
images=$(find "$DATA/digits" -name '*.png' | wc -l)
lines=$(wc -l < "$DATA/out/predict-digits/parallel_run_step.txt")
if ((lines != images)); then
    echo "kind-e2e: $lines output lines for $images images" >&2
    exit 1
fi
# The chart's own test (`helm test prs -n prs-system --timeout 5m --logs`, a tiny step on the
# same claim under out/, as installed above) is checked by the cluster tier
# (tests/cluster/test_chart_helm_test.py); it is not run here until it has been run on kind.
phase "done"
