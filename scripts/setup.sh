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
$PIP install -q -e ".[inference,dicom,test]"
# deepbet ships the pretrained weights (MIT); --no-deps keeps the CPU torch and skips its GUI dependency.
$PIP install -q --no-deps deepbet==1.0.2

# Real images with reference labels (see shared/DATA.md).
need=()
[ -f /usr/share/mricron/templates/ch2.nii.gz ] || need+=(mricron-data)
[ -f /usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz ] || need+=(insighttoolkit5-examples)
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "MedAI set up: $(.venv/bin/medai --version)"
