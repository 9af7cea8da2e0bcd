#!/usr/bin/env bash
# Installs the real servers the crm-bridge tests talk to: Tryton 7.0 LTS (from
# PyPI, into a private venv) and Request Tracker 5 (from Debian, preseeded so
# the install asks nothing). Idempotent: only what is missing is installed, and
# apt-get update runs only when a package is missing.
#
# The Tryton venv lives in $VOXBRIDGE_TRYTON_VENV (default
# ~/.cache/voxbridge/tryton-7.0): outside target/ so `cargo clean` keeps it.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/common.sh
. "$HERE/common.sh"

# --- Request Tracker 5 -------------------------------------------------------
RT_PACKAGES=(request-tracker5 rt5-db-sqlite rt5-standalone)
if ! dpkg-query -W -f='${Status}' request-tracker5 2>/dev/null | grep -q "install ok installed"; then
  # The tests run RT with their own RT_SiteConfig.pm and SQLite file, so the
  # package must not create a database or ask for a root password.
  as_root debconf-set-selections <<'SEL'
request-tracker5 request-tracker5/dbconfig-install boolean false
request-tracker5 request-tracker5/dbconfig-upgrade boolean false
request-tracker5 request-tracker5/database-type select sqlite3
request-tracker5 request-tracker5/rtname string voxbridge.test
request-tracker5 request-tracker5/organization string voxbridge.test
request-tracker5 request-tracker5/correspondaddress string rt@voxbridge.test
request-tracker5 request-tracker5/commentaddress string rt-comment@voxbridge.test
request-tracker5 request-tracker5/webbaseurl string http://127.0.0.1
request-tracker5 request-tracker5/webpath string /rt
request-tracker5 request-tracker5/install-cronjobs boolean false
request-tracker5 request-tracker5/handle-siteconfig-permissions boolean false
request-tracker5 request-tracker5/initial-root-password password password
SEL
fi
apt_install "${RT_PACKAGES[@]}" python3-venv
test -x /usr/share/request-tracker5/libexec/rt-server || { echo "install-crm-servers: rt-server missing after install" >&2; exit 1; }

# --- Tryton 7.0 --------------------------------------------------------------
VENV="${VOXBRIDGE_TRYTON_VENV:-$HOME/.cache/voxbridge/tryton-7.0}"
# Exact versions with sha256s (trytond 7.0, its modules, proteus and
# phonenumbers, and everything they pull in); the stamp rebuilds the venv
# when a pin changes, and a venv that no longer imports is rebuilt too.
REQ="$HERE/tryton-requirements.txt"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
have="$(cat "$VENV/.voxbridge-req-sha256" 2>/dev/null || true)"
if [ "$want" != "$have" ] || ! venv_ok "$VENV" trytond trytond.modules.sale phonenumbers proteus; then
  echo "install-crm-servers: installing Tryton 7.0 into $VENV"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  # The Debian python3 (not a pyenv shim) so the venv does not depend on the
  # user's shell set-up.
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-cache-dir --require-hashes -r "$REQ"
  echo "$want" >"$VENV/.voxbridge-req-sha256"
fi
venv_ok "$VENV" trytond trytond.modules.sale phonenumbers proteus \
  || { echo "install-crm-servers: Tryton venv broken at $VENV" >&2; exit 1; }
echo "install-crm-servers: ok (RT $(dpkg-query -W -f='${Version}' request-tracker5), trytond $("$VENV/bin/python" -c 'import trytond; print(trytond.__version__)') in $VENV)"
