#!/usr/bin/env bash
# Installs what voxbridge needs to build, run and test on Debian. Idempotent:
# packages already present are not touched, and apt-get update runs only when
# something is missing.
set -euo pipefail

APT_PACKAGES=(
  sip-tester      # sipp: load and protocol tests
  baresip-core    # a real SIP phone for end-to-end tests
  kamailio        # a real registrar for the registration tests
  linphone-cli    # a second real SIP phone (linphonec)
  espeak-ng       # prompt generation and speech test audio
  sox             # audio conversion for prompts and test audio
  pkg-config
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi

# Request Tracker 5 and Tryton 7.0 for the CRM connector tests.
"$(dirname "$0")/install-crm-servers.sh"
# Speech: PocketSphinx, espeak-ng, whisper.cpp build tools, ONNX Runtime.
"$(dirname "$0")/install-models-deps.sh"

command -v cargo >/dev/null || { echo "install-deps: cargo not found; install Rust (rustup) first" >&2; exit 1; }
command -v sipp >/dev/null || { echo "install-deps: sipp missing after install" >&2; exit 1; }
echo "install-deps: ok ($(sipp -v 2>&1 | grep -o 'SIPp v[0-9.]*' | head -1), $(cargo --version))"
