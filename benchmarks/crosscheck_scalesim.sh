#!/usr/bin/env bash
# Cross-check attnsim's systolic GEMM compute cycles against SCALE-Sim v3, from scratch.
#
#   benchmarks/crosscheck_scalesim.sh [options of benchmarks/crosscheck_scalesim.py]
#
# attnsim runs with --fill-drain scalesim (SCALE-Sim's fold counting; compared column) and with its
# default per_fold (second column); see docs/validation.md, "GEMM timing vs SCALE-Sim".
#
# SCALE-Sim needs numpy<2.4, so it lives in its own virtualenv, .scalesim-venv (gitignored),
# never in .venv. attnsim runs from .venv (created with `make` if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
SCALESIM_VENV=.scalesim-venv

if [ ! -x "$SCALESIM_VENV/bin/python" ] || ! "$SCALESIM_VENV/bin/python" -c 'import scalesim' 2>/dev/null; then
    echo "creating $SCALESIM_VENV with scalesim (numpy<2.4)" >&2
    "$PYTHON" -m venv "$SCALESIM_VENV"
    "$SCALESIM_VENV/bin/python" -m pip install --quiet --upgrade pip
    "$SCALESIM_VENV/bin/python" -m pip install --quiet 'scalesim' 'numpy<2.4'
fi

if [ ! -x .venv/bin/python ]; then
    echo "creating .venv for attnsim (make .venv/.installed)" >&2
    make --no-print-directory .venv/.installed PYTHON="$PYTHON"
fi

exec "$SCALESIM_VENV/bin/python" benchmarks/crosscheck_scalesim.py "$@"
