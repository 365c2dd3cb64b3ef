#!/usr/bin/env bash
# Integration check: bundles/cover_seg in a real MONAI Label server (app apps/cover_label): infer, save labels,
# train, stop and resume a training, infer with the retrained model.
#
# Creates (once) its own virtual environment at .venv-monailabel in the repo root -- MONAI Label's pins clash with
# the project's core environment -- then runs tests/integration/test_monailabel.py with it. Offline apart from
# the package registry; CPU only; about 5 minutes to install (8 GB, CUDA build of torch), 1.5-2.5 minutes to test
# (one server start, three trainings). Re-running reuses the environment while the pins below are unchanged (a
# change to setup.cfg/pyproject.toml reinstalls only this package).
#
#   bash scripts/monailabel_integration.sh            # install if needed, then test
#   MONAILABEL_REINSTALL=1 bash scripts/monailabel_integration.sh   # rebuild the environment from scratch
#   MONAILABEL_VENV=/some/dir bash scripts/monailabel_integration.sh  # environment elsewhere (default .venv-monailabel)
#   MONAILABEL_SETUP_ONLY=1 bash scripts/monailabel_integration.sh   # install only (CI does this while the main suite runs)
#
# Exits non-zero when the install or the test fails; with MONAILABEL_INSTALL_OPTIONAL=1 (CI) an install that cannot
# complete (registry unreachable, disk full) is reported as a skip instead, while a failing test still fails.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
VENV="${MONAILABEL_VENV:-$REPO/.venv-monailabel}"  # override to keep it outside a throwaway clone
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

# torch 2.14.1 + torchvision 0.29.1: the pair that lies on this machine kind's disk (torchvision, which MONAI Label
# pulls in through monai[torchvision], does not import beside the CPU-only torch 2.13.0 the main suite uses).
# The three DICOM caps: monailabel 0.8.5 predates pydicom 3 / dicomweb-client 0.60 / pynetdicom 3 and dies at import
# with them. monai itself comes from this repo's pin (monai==1.6.1), which satisfies monailabel's monai>=1.4.0, so
# one resolve installs both and our package with its own declared dependencies (no --no-deps needed).
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)
ML_PINS=(monailabel==0.8.5 "pydicom<3" "dicomweb-client<0.60" "pynetdicom<3")
BASE_STAMP="$VENV/.stamp-base"      # python + pins: a change rebuilds the environment
PKG_STAMP="$VENV/.stamp-package"    # this repo's declared dependencies: a change reinstalls the package only
base_text="$("$PY" --version 2>&1) ${TORCH_PINS[*]} ${ML_PINS[*]}"
pkg_text="$(cat setup.cfg pyproject.toml | cksum)"

# pip here warns once per package that the machine's extra local indexes lack it: keep that noise out of the log.
imports() { (cd / && "$VENV/bin/python" -c "import $1" >/dev/null 2>&1); }  # not from the repo root
pip_q() { "$VENV/bin/python" -m pip install -q "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

t0=$(date +%s)
if [[ "${MONAILABEL_REINSTALL:-0}" == 1 ]]; then
    rm -rf "$VENV"
fi
install_failed() {
    if [[ "${MONAILABEL_INSTALL_OPTIONAL:-0}" == 1 ]]; then
        echo "== MONAI Label integration SKIPPED: the install into $VENV failed (see above); the test did not run"
        exit 0
    fi
    exit 1
}
trap install_failed ERR
if [[ -f "$BASE_STAMP" && "$(cat "$BASE_STAMP")" == "$base_text" ]] && imports monailabel; then
    echo "== reusing $VENV"
else
    echo "== installing MONAI Label into $VENV (about 5 minutes)"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    pip_q --upgrade pip
    pip_q "${TORCH_PINS[@]}"
    rm -f "$PKG_STAMP"
fi
if [[ ! -f "$PKG_STAMP" || "$(cat "$PKG_STAMP")" != "$pkg_text" ]] || ! imports monai_cover; then
    # one resolve: monailabel, the DICOM caps and this repo (editable) with its own pins, e.g. monai==1.6.1
    # editable installs of this checkout write its egg-info: one at a time (CI installs three environments at once)
    flock "${TMPDIR:-/tmp}/monai_cover_editable.lock" "$VENV/bin/python" -m pip install -q "${ML_PINS[@]}" -e . pytest \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    echo "$pkg_text" > "$PKG_STAMP"
fi
echo "$base_text" > "$BASE_STAMP"
"$VENV/bin/python" -c "import monailabel, monai, torch, monai_cover; print('monailabel', monailabel.__version__, \
'| monai', monai.__version__, '| torch', torch.__version__, '| monai_cover', monai_cover.__version__)"
t1=$(date +%s)
echo "== environment ready in $((t1 - t0)) s"

trap - ERR
[[ "${MONAILABEL_SETUP_ONLY:-0}" == 1 ]] && exit 0
echo "== MONAI Label integration test"
"$VENV/bin/python" -m pytest -q -s -p no:cacheprovider tests/integration/test_monailabel.py "$@"
t2=$(date +%s)
echo "== test took $((t2 - t1)) s, total $((t2 - t0)) s"
