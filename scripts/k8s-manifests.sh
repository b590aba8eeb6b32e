#!/usr/bin/env bash
# Regenerates the Kubernetes manifests with the Quarkus Kubernetes extension and copies them to docker/k8s/:
#   docker/k8s/kubernetes.yml       CPU variant   (./mvnw -Pk8s package -Dquarkus.profile=k8s)
#   docker/k8s/gpu/kubernetes.yml   GPU variant   (-Dquarkus.profile=k8s,k8s-gpu; kustomization.yaml beside it adds
#                                                  the nvidia.com/gpu limit)
# Settings: src/main/resources/application-k8s.properties and application-k8s-gpu.properties. No cluster is needed.
# The normal build (./mvnw package, run.sh, the images) does not carry the extension.
set -euo pipefail
cd "$(dirname "$0")/.."
mvn=(./mvnw -B -q -Pk8s)
[[ ${LAB_MVN_OFFLINE:-0} == 1 ]] && mvn+=(-o)
echo "k8s-manifests: CPU variant" >&2
"${mvn[@]}" package -DskipTests -Dquarkus.profile=k8s
cp target/kubernetes/kubernetes.yml docker/k8s/kubernetes.yml
echo "k8s-manifests: GPU variant" >&2
"${mvn[@]}" package -DskipTests -Dquarkus.profile=k8s,k8s-gpu
cp target/kubernetes-gpu/kubernetes.yml docker/k8s/gpu/kubernetes.yml
# the jar just built carries the k8s profiles' build: drop it so that run.sh builds a plain one
rm -rf target/quarkus-app target/lab-build-flavor
echo "k8s-manifests: wrote docker/k8s/kubernetes.yml and docker/k8s/gpu/kubernetes.yml" >&2
