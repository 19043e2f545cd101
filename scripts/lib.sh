# shellcheck shell=bash
# Helpers shared by the scripts in this directory. Sourced, never run.
# Progress goes to stderr so a script's stdout stays usable by its caller.

# say prints one progress line.
say() { printf '==> %s\n' "$*" >&2; }

# die prints an error and ends the script.
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# as_root runs a command as root: directly when we are root, else through sudo.
# Under CI, or without a terminal to type a password into, sudo must not prompt.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
		return
	fi
	command -v sudo >/dev/null || die "need root to run '$*': run as root or install sudo"
	if [ -n "${CI:-}" ] || ! [ -t 0 ]; then
		sudo -n "$@"
	else
		sudo "$@"
	fi
}

# apt_install installs Debian packages without questions, refreshing the
# package lists once per run (the flag is exported so nested scripts see it).
# apt-get's progress goes to stderr: callers run inside $(...) (ensure_go
# prints only the Go bin directory on stdout).
# It waits for the dpkg lock: on a fresh machine unattended-upgrades often holds it.
apt_install() {
	command -v apt-get >/dev/null || die "missing packages ($*) and no apt-get to install them: install them by hand"
	say "installing with apt-get: $*"
	if [ -z "${SHAOBING_APT_UPDATED:-}" ]; then
		as_root env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 update >&2
		export SHAOBING_APT_UPDATED=1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "$@" >&2
}

# deb_installed reports whether a Debian package is installed.
deb_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}
