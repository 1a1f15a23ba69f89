#!/usr/bin/env bash
# Set up mmsft from scratch: a virtual environment with a torch build that works here, mmsft and its extras.
#
#   bash scripts/setup.sh              # .venv with torch + torchvision, mmsft[video,bench,dev]
#   bash scripts/setup.sh --libero     # ... plus the LIBERO robot-manipulation extra (MuJoCo, robosuite, assets)
#   bash scripts/setup.sh --browser    # ... plus headless Chromium (apt) for the report browser test (-m browser)
#
# Environment: PYTHON (interpreter, default python3), VENV (folder, default .venv),
# MMSFT_TORCH=skip keeps a torch you installed yourself (GPU users), MMSFT_TORCH="torch==X torchvision==Y" pins others.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
WITH_LIBERO=0
WITH_BROWSER=0
for arg in "$@"; do
  case "$arg" in
    --libero) WITH_LIBERO=1 ;;
    --browser) WITH_BROWSER=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (expected --libero or --browser)" >&2; exit 2 ;;
  esac
done

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off)

# torch: the Qwen-VL processors and qwen-vl-utils need a torchvision that imports. On these x86_64 machines the only
# such pair is torch 2.14.1 + torchvision 0.29.1 (a CUDA build that runs on CPU); on aarch64, 2.9.1 + 0.24.1.
if [ "${MMSFT_TORCH:-}" != "skip" ]; then
  if [ -n "${MMSFT_TORCH:-}" ]; then
    read -r -a TORCH_PINS <<< "$MMSFT_TORCH"
  elif [ "$(uname -m)" = "aarch64" ]; then
    TORCH_PINS=("torch==2.9.1" "torchvision==0.24.1")
  else
    TORCH_PINS=("torch==2.14.1" "torchvision==0.29.1")
  fi
  if ! "$VENV/bin/python" -c "import torch, torchvision" >/dev/null 2>&1; then
    echo "== installing ${TORCH_PINS[*]}"
    "${PIP[@]}" -q "${TORCH_PINS[@]}"
  fi
fi

echo "== installing mmsft[video,bench,dev]"
"${PIP[@]}" -q -e ".[video,bench,dev]"

if [ "$WITH_LIBERO" = 1 ]; then
  echo "== installing the LIBERO extra"
  bash scripts/install_libero.sh "$VENV/bin/python"
fi

if [ "$WITH_BROWSER" = 1 ]; then
  if command -v chromium >/dev/null 2>&1; then
    echo "== chromium already installed"
  elif command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium (Debian package) for the report browser test"
    SUDO=(); [ "$(id -u)" = 0 ] || SUDO=(sudo)
    { "${SUDO[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq chromium; } \
      || echo "setup.sh: warning: installing chromium failed; the browser test will be skipped" >&2
  else
    echo "setup.sh: --browser needs apt-get (Debian/Ubuntu); install Chromium yourself" >&2
  fi
fi

"$VENV/bin/python" -c "import torch, torchvision, transformers, mmsft; print('mmsft ready: torch', torch.__version__, '| torchvision', torchvision.__version__, '| transformers', transformers.__version__)"
