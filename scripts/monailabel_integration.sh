#!/usr/bin/env bash
# Integration check: serve bundles/cover_seg from a real MONAI Label server (sample app `monaibundle`) and infer.
#
# Creates (once) its own virtual environment at .venv-monailabel in the repo root -- MONAI Label's pins clash with
# the project's core environment -- then runs tests/integration/test_monailabel.py with it. Offline apart from
# the package registry; CPU only. Re-running reuses the environment while the pins below are unchanged.
#
#   bash scripts/monailabel_integration.sh            # install if needed, then test
#   MONAILABEL_REINSTALL=1 bash scripts/monailabel_integration.sh   # rebuild the environment from scratch
#
# Exits non-zero when the install or the test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
VENV="$REPO/.venv-monailabel"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

# torch 2.14.1 + torchvision 0.29.1: the pair that lies on this machine kind's disk (torchvision, which MONAI Label
# pulls in through monai[torchvision], does not import beside the CPU-only torch 2.13.0 the main suite uses).
# The three DICOM caps: monailabel 0.8.5 predates pydicom 3 / dicomweb-client 0.60 / pynetdicom 3 and dies at import
# with them. monai itself comes from this repo's pin (monai==1.6.1), which satisfies monailabel's monai>=1.4.0, so
# one resolve installs both and our package with its own declared dependencies (no --no-deps needed).
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)
ML_PINS=(monailabel==0.8.5 "pydicom<3" "dicomweb-client<0.60" "pynetdicom<3")
STAMP_TEXT="$($PY --version 2>&1) ${TORCH_PINS[*]} ${ML_PINS[*]} $(cat setup.cfg | cksum)"
STAMP="$VENV/.monailabel-integration-stamp"

t0=$(date +%s)
if [[ "${MONAILABEL_REINSTALL:-0}" == 1 ]]; then
    rm -rf "$VENV"
fi
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_TEXT" ]] \
        && "$VENV/bin/python" -c "import monailabel, monai_cover" >/dev/null 2>&1; then
    echo "== reusing $VENV"
else
    echo "== installing MONAI Label into $VENV (a few minutes)"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q "${TORCH_PINS[@]}"
    "$VENV/bin/python" -m pip install -q "${ML_PINS[@]}" -e . pytest
    "$VENV/bin/python" -c "import monailabel, monai, torch, monai_cover; print('monailabel', monailabel.__version__, \
'| monai', monai.__version__, '| torch', torch.__version__, '| monai_cover', monai_cover.__version__)"
    echo "$STAMP_TEXT" > "$STAMP"
fi
t1=$(date +%s)
echo "== environment ready in $((t1 - t0)) s"

echo "== MONAI Label integration test"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/integration/test_monailabel.py "$@"
t2=$(date +%s)
echo "== test took $((t2 - t1)) s, total $((t2 - t0)) s"
