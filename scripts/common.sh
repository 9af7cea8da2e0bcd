# Shared by the install scripts (sourced, not run). Debian 12+.
#
# - Works as root and as a user with sudo; says so clearly when neither.
# - `apt-get update` runs at most once per install run, and only when a
#   package is missing (the flag is exported, so the scripts this one starts
#   share it).
# - A missing $HOME (cron, systemd units, `env -i`) is taken from the
#   password database.

if [ -z "${HOME:-}" ]; then
  HOME="$(getent passwd "$(id -u)" | cut -d: -f6)"
  [ -n "$HOME" ] || { echo "${0##*/}: \$HOME is unset and user $(id -u) has no home directory; set HOME or VOXBRIDGE_CACHE" >&2; exit 1; }
  export HOME
fi

# Run "$@" as root: directly when root, through sudo otherwise. sudo resets
# the environment, so apt's DEBIAN_FRONTEND goes in through `env` (without it
# debconf may stop and ask).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "${0##*/}: needs root to run: $*" >&2
    echo "${0##*/}: run this script as root, or install sudo and allow this user to use it" >&2
    exit 1
  fi
}

# Install the Debian packages among "$@" that are not installed yet.
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "${0##*/}: installing ${missing[*]}"
  if [ -z "${VOXBRIDGE_APT_UPDATED:-}" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    export VOXBRIDGE_APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

# Whether a venv's interpreter runs and imports every module named.
venv_ok() {
  local venv="$1"
  shift
  [ -x "$venv/bin/python" ] || return 1
  "$venv/bin/python" -c "import $(IFS=,; echo "$*")" >/dev/null 2>&1
}
