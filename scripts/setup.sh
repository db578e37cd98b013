#!/usr/bin/env bash
# One-time set-up on a fresh machine: Graphviz's `dot` and chromium, then archviz with its extras.
# torch is installed first and pinned (2.13.0, CPU): a looser requirement would pull a
# multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# Graphviz draws the diagrams; Debian's chromium runs the HTML report's tests (headless).
APT=""
command -v dot >/dev/null 2>&1 || APT="$APT graphviz"
{ command -v chromium >/dev/null 2>&1 || [ -x /usr/lib/chromium/chromium ]; } || APT="$APT chromium"
if [ -n "$APT" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $APT >/dev/null
  else
    echo "warning:$APT not found and apt-get unavailable; diagrams or the browser tests will be skipped" >&2
  fi
fi
need_install=0
$PY -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null || need_install=1
if [ $need_install = 1 ]; then
  # The CPU build: on PyPI, torch for Linux is the multi-GB CUDA build, so take PyTorch's
  # CPU index where it can be reached; otherwise (an offline mirror, a wheel directory)
  # whatever pip's own configuration offers for torch==2.13.0.
  CPU_INDEX=https://download.pytorch.org/whl/cpu
  if command -v curl >/dev/null 2>&1 && curl -fsS --max-time 5 -o /dev/null "$CPU_INDEX/torch/" 2>/dev/null; then
    $PY -m pip install -q torch==2.13.0 --index-url "$CPU_INDEX"
  else
    $PY -m pip install -q torch==2.13.0
  fi
fi
$PY -c "import archviz, click, rich, networkx, yaml, graphviz, pytest, hypothesis, onnx, jsonschema, nbclient, nbformat, ipykernel" 2>/dev/null \
  || $PY -m pip install -q -e ".[torch,dev]"
