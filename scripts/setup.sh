#!/usr/bin/env bash
# Sets up everything MedAI needs on a fresh machine: a .venv at the repository root with the `medai`
# command, the CPU build of torch, the deepbet weights, and the real test images from Debian packages.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
fi
PIP=".venv/bin/python -m pip"

# torch first and pinned: the CPU build lies on this disk; an unpinned torch pulls a multi-GB CUDA build.
$PIP install -q torch==2.13.0
$PIP install -q -e ".[inference,dicom,mesh,engines,train,features,evaluate,test]"
# deepbet ships the pretrained weights (MIT); --no-deps keeps the CPU torch and skips its GUI dependency.
$PIP install -q --no-deps deepbet==1.0.2

# Real images with reference labels (see shared/DATA.md).
need=()
[ -f /usr/share/mricron/templates/ch2.nii.gz ] || need+=(mricron-data)
[ -f /usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz ] || need+=(insighttoolkit5-examples)
[ -f /usr/share/doc/invesalius-examples/examples/Cranium.inv3 ] || need+=(invesalius-examples)
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# pyradiomics' test cases (BSD-3): real MR and CT volumes with tumour outlines, from its 3.0.1 source archive
# (the wheels do not ship them), unpacked into .data/pyradiomics/ (git-ignored). Building the sdist's metadata
# needs numpy, setuptools, wheel and versioneer in the venv.
PYRADIOMICS_SDIST_SHA256=47c57f441d6cb7973fa3b2ea48d3948df78e3348e1c69e1e2ff19001601fc2f5
if [ ! -f .data/pyradiomics/brain1_image.nrrd ]; then
    $PIP install -q "setuptools>=68" wheel==0.48.0 versioneer==0.29
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    $PIP download -q --no-deps --no-build-isolation --no-binary=:all: pyradiomics==3.0.1 -d "$tmp"
    echo "$PYRADIOMICS_SDIST_SHA256  $tmp/pyradiomics-3.0.1.tar.gz" | sha256sum -c --quiet -
    tar -xzf "$tmp/pyradiomics-3.0.1.tar.gz" -C "$tmp" pyradiomics-3.0.1/data
    mkdir -p .data
    rm -rf .data/pyradiomics
    mv "$tmp/pyradiomics-3.0.1/data" .data/pyradiomics
fi
echo "MedAI set up: $(.venv/bin/medai --version)"
