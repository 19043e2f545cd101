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

# port_in_use reports whether something on 127.0.0.1 accepts connections on port $1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port prints a port on 127.0.0.1 that nothing listens on now. Another
# process may take it before the caller does, so callers retry on failure.
free_port() {
	local port=$((20000 + RANDOM % 30000))
	while port_in_use "$port"; do port=$((port + 1)); done
	printf '%s\n' "$port"
}

# pg_bin_dir prints the bin directory of the newest installed PostgreSQL
# (a path without initdb when none is installed).
pg_bin_dir() {
	dirname "$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)"
}

# pg_start starts a throwaway PostgreSQL cluster with the binaries in $1,
# listening on 127.0.0.1 with fsync and synchronous_commit on, and sets
# pg_dir (its directory) and pg_port. Set `trap pg_stop EXIT` first, so the
# cluster is stopped and deleted however the script ends. It lives under
# /tmp, not $TMPDIR: the postgres user must reach it and the socket path
# must stay short. As root, PostgreSQL runs as the postgres user (as_pg).
pg_start() {
	pg_bin=$1
	pg_dir=$(mktemp -d /tmp/shaobing-pg.XXXXXX)
	if [ "$(id -u)" -eq 0 ]; then
		# initdb and postgres refuse to run as root; the Debian package made this user.
		id -u postgres >/dev/null 2>&1 || die "running as root but there is no postgres user to run PostgreSQL as"
		chown postgres "$pg_dir"
		as_pg() { (cd "$pg_dir" && runuser -u postgres -- "$@"); }
	else
		as_pg() { "$@"; }
	fi
	say "starting a throwaway PostgreSQL ($("$pg_bin/postgres" --version)) in $pg_dir"
	# --no-sync only skips initdb's final flush; the server itself keeps fsync on.
	as_pg "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
		>"$pg_dir/initdb.log" 2>&1 || {
		cat "$pg_dir/initdb.log" >&2
		die "initdb failed"
	}
	cat >>"$pg_dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$pg_dir'
max_connections = 200
fsync = on
synchronous_commit = on
CONF
	# Another process can take the port between the check and the start, so retry a few times.
	pg_port=
	local attempt port
	for attempt in 1 2 3 4 5; do
		port=$(free_port)
		if as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 -o "-p $port" start >/dev/null; then
			# shellcheck disable=SC2034 # for the caller
			pg_port=$port
			return 0
		fi
		say "PostgreSQL did not start on port $port (attempt $attempt)"
	done
	cat "$pg_dir/server.log" >&2 || true
	die "could not start PostgreSQL"
}

# pg_stop stops and deletes the cluster pg_start made, if any.
pg_stop() {
	[ -n "${pg_dir:-}" ] || return 0
	if [ -f "$pg_dir/data/postmaster.pid" ]; then
		as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
			as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$pg_dir"
}
