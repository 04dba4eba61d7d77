#!/usr/bin/env bash
# Checks the packages as an installer would meet them (scripts/test.sh runs
# it after the Go tests): builds them with package.sh; lintian reports no
# error on any; the amd64 one installs with dpkg, its unit passes
# systemd-analyze verify, the installed binary runs the installed config
# (as the service's user) and the CLI finds it without flags, a remove
# keeps the data and a purge leaves nothing; each arm binary runs under
# qemu-user-static on the oldest CPU of its kind (version, a PDU decoded,
# the daemon on its defaults answering the echo number).
#
# It installs and purges the package "outpost" on this machine: run it
# where that is fine (CI, a container), as root or with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

fail() {
	echo "check-package: FAIL: $*" >&2
	exit 1
}
step_start=$SECONDS
step() {
	echo "check-package: $* (at ${SECONDS}s)"
}
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo

for tool in dpkg-deb lintian systemd-analyze udevadm qemu-aarch64-static qemu-arm-static setpriv unshare ip; do
	command -v "$tool" >/dev/null || fail "$tool is missing (scripts/test.sh installs it)"
done
if dpkg-query -W -f='${Status}' outpost 2>/dev/null | grep -q installed; then
	fail "the package outpost is installed here; this check installs and purges it: remove it first"
fi

tmp=$(mktemp -d)
daemon_pid=""
installed=""
cleanup() {
	[ -z "$daemon_pid" ] || kill "$daemon_pid" 2>/dev/null || true
	if [ -n "$installed" ]; then
		$sudo dpkg --purge outpost >/dev/null 2>&1 || true
		$sudo deluser --system outpost >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# A daemon on its own loopback: its config's ports (the broker's 1883)
# may be taken on this machine by anything else; the CLI reaches it over
# its Unix socket all the same. An array, not a function: with it
# "CMD &" is CMD itself ($! its pid, which SIGTERM reaches), no subshell.
own_net=($sudo unshare -n sh -c 'ip link set lo up && exec "$@"' sh)

# OUTPOST_PACKAGE_BUILT=1 checks the packages already in dist/ (after a
# scripts/package.sh of one's own).
if [ "${OUTPOST_PACKAGE_BUILT:-}" != 1 ]; then
	step "build"
	rm -rf dist
	scripts/package.sh >"$tmp/package.log" 2>&1 || {
		cat "$tmp/package.log"
		fail "package.sh"
	}
fi
version=$(dpkg-deb -f dist/outpost_*_amd64.deb Version) || fail "no amd64 package in dist/"
for arch in amd64 arm64 armhf armel; do
	deb=dist/outpost_${version}_$arch.deb
	[ -f "$deb" ] || fail "$deb was not built"
	[ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] || fail "$deb: Architecture is not $arch"
	file -b "dist/outpost-linux-$arch" | grep -q "statically linked" || fail "dist/outpost-linux-$arch is not static: $(file -b "dist/outpost-linux-$arch")"
done
echo "built: $(cd dist && ls -s --block-size=K -- *.deb | tr '\n' ' ')"

step "lintian"
# Exit 1: errors found; 2: it could not check.
rc=0
lintian --tag-display-limit 0 dist/outpost_"${version}"_*.deb >"$tmp/lintian.log" 2>&1 || rc=$?
grep -v 'running with root privileges' "$tmp/lintian.log" || true
[ "$rc" -eq 0 ] && ! grep -q '^E: ' "$tmp/lintian.log" || fail "lintian: exit $rc"

step "install (dpkg -i)"
deb=dist/outpost_${version}_amd64.deb
# What the package may touch, to compare after the purge: all of it goes.
files() { find /etc /lib /usr /var/lib /opt -xdev -path /var/lib/dpkg -prune -o -print 2>/dev/null | sort; }
files >"$tmp/files.before"
installed=1
$sudo dpkg -i "$deb" >"$tmp/dpkg.log" 2>&1 || {
	cat "$tmp/dpkg.log"
	fail "dpkg -i $deb"
}
getent passwd outpost >/dev/null || fail "postinst made no user outpost"
[ "$(stat -c '%U:%G %a' /var/lib/outpost)" = "outpost:outpost 700" ] || fail "/var/lib/outpost: $(stat -c '%U:%G %a' /var/lib/outpost)"
[ "$(stat -c '%U:%G %a' /etc/outpost/outpost.toml)" = "root:outpost 640" ] || fail "/etc/outpost/outpost.toml: $(stat -c '%U:%G %a' /etc/outpost/outpost.toml)"
dpkg-query -W -f='${Conffiles}\n' outpost | grep -q /etc/outpost/outpost.toml || fail "the config is not a conffile"
[ "$(/usr/bin/outpost version)" = "outpost $version" ] || fail "installed version: $(/usr/bin/outpost version)"
/usr/bin/outpost config check /etc/outpost/outpost.toml || fail "the installed config does not pass its own check"
# It exits 0 on an unknown key or a bad value (it ignores the line): any
# word from it is a failure.
verify=$(systemd-analyze verify outpost.service 2>&1) && [ -z "$verify" ] || fail "systemd-analyze verify outpost.service: $verify"
[ -f /usr/share/man/man8/outpost.8.gz ] || fail "no man page"
# udev reads every rules file for a test event and names each line it
# cannot parse ("FILE:LINE Invalid key …"); a container has no USB modem
# to show the rules' effect on.
$sudo udevadm test --action=add /sys/class/tty/tty0 >"$tmp/udev.log" 2>&1 || true
grep -q 'Reading rules file: .*/61-outpost.rules' "$tmp/udev.log" || fail "udevadm test did not read 61-outpost.rules: $(cat "$tmp/udev.log")"
! grep -E '^/[^ ]*/61-outpost\.rules:[0-9]+ ' "$tmp/udev.log" || fail "udev does not take 61-outpost.rules"

step "run the installed binary on the installed config"
unset OUTPOST_CONFIG
if [ -d /run/systemd/system ]; then
	# postinst enabled and started it.
	systemctl is-enabled --quiet outpost || fail "the service is not enabled"
	for _ in $(seq 60); do systemctl is-active --quiet outpost && break; sleep 1; done
	systemctl is-active --quiet outpost || fail "the service is not active: $(systemctl status outpost --no-pager)"
else
	# No systemd here (a container): as the unit would, as its user.
	[ -L /etc/systemd/system/multi-user.target.wants/outpost.service ] || fail "postinst did not enable the service"
	"${own_net[@]}" setpriv --reuid=outpost --regid=outpost --init-groups -- /usr/bin/outpost run --config /etc/outpost/outpost.toml >"$tmp/daemon.log" 2>&1 &
	daemon_pid=$!
fi
ready=""
for _ in $(seq 120); do
	if $sudo /usr/bin/outpost status >/dev/null 2>&1; then
		ready=1
		break
	fi
	[ -z "$daemon_pid" ] || kill -0 "$daemon_pid" 2>/dev/null || break
	sleep 0.5
done
[ -n "$ready" ] || {
	cat "$tmp/daemon.log" 2>/dev/null || true
	fail "the CLI, without flags, does not reach the installed daemon"
}
$sudo /usr/bin/outpost send --to +15555550100 --text "installed $version" >/dev/null || fail "send"
echoed=""
for _ in $(seq 120); do
	if $sudo /usr/bin/outpost inbox --json | grep -q "echo: installed $version"; then
		echoed=1
		break
	fi
	sleep 0.5
done
[ -n "$echoed" ] || fail "no echo in the installed daemon's inbox"
[ "$(stat -c %U /var/lib/outpost/outpost.db)" = outpost ] || fail "the database is not the outpost user's"
if [ -n "$daemon_pid" ]; then
	kill -TERM "$daemon_pid"
	wait "$daemon_pid" || fail "the daemon exited $? on SIGTERM: $(cat "$tmp/daemon.log")"
	daemon_pid=""
fi

step "remove, then purge"
$sudo dpkg -r outpost >"$tmp/dpkg.log" 2>&1 || {
	cat "$tmp/dpkg.log"
	fail "dpkg -r"
}
[ ! -e /usr/bin/outpost ] || fail "dpkg -r left /usr/bin/outpost"
[ -f /var/lib/outpost/outpost.db ] || fail "dpkg -r removed the data (only a purge may)"
[ -f /etc/outpost/outpost.toml ] || fail "dpkg -r removed the config (only a purge may)"
$sudo dpkg --purge outpost >"$tmp/dpkg.log" 2>&1 || {
	cat "$tmp/dpkg.log"
	fail "dpkg --purge"
}
for f in /usr/bin/outpost /etc/outpost /var/lib/outpost /lib/systemd/system/outpost.service \
	/etc/systemd/system/multi-user.target.wants/outpost.service /lib/udev/rules.d/61-outpost.rules \
	/usr/share/doc/outpost /usr/share/man/man8/outpost.8.gz /var/lib/systemd/deb-systemd-helper-enabled/outpost.service.dsh-also; do
	[ ! -e "$f" ] || fail "purge left $f"
done
! dpkg-query -W outpost >/dev/null 2>&1 || fail "dpkg still knows the package after a purge"
# Debian keeps a package's system user on purge; this test removes it so
# that the next run makes it again.
$sudo deluser --system outpost >/dev/null 2>&1 || $sudo userdel outpost
installed=""
files >"$tmp/files.after"
if ! diff "$tmp/files.before" "$tmp/files.after" >"$tmp/files.diff"; then
	cat "$tmp/files.diff"
	fail "install and purge did not leave the file system as it was"
fi

# The oldest CPU each package is for: Pi 3 (arm64), Pi 2 (armhf), Pi Zero/1 (armel).
for spec in "arm64 qemu-aarch64-static cortex-a53" "armhf qemu-arm-static cortex-a7" "armel qemu-arm-static arm1176"; do
	read -r arch qemu cpu <<<"$spec"
	step "smoke test $arch under $qemu -cpu $cpu"
	bin=$repo/dist/outpost-linux-$arch
	q() { "$qemu" -cpu "$cpu" "$bin" "$@"; }
	dir=$tmp/$arch
	mkdir -p "$dir"
	cd "$dir"
	[ "$(q version)" = "outpost $version" ] || fail "$arch: version: $(q version)"
	q decode pdu 07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07 --json | grep -q '"text":"How are you?"' || fail "$arch: decode pdu"
	# The defaults: the simulated modem, the broker on 127.0.0.1:1883, ./outpost-data.
	"${own_net[@]}" env OUTPOST_CONFIG="" "$qemu" -cpu "$cpu" "$bin" run >"$dir/daemon.log" 2>&1 &
	daemon_pid=$!
	ready=""
	for _ in $(seq 240); do
		if OUTPOST_CONFIG="" q status >/dev/null 2>&1; then
			ready=1
			break
		fi
		kill -0 "$daemon_pid" 2>/dev/null || break
		sleep 0.5
	done
	[ -n "$ready" ] || fail "$arch: the daemon did not come up: $(cat "$dir/daemon.log")"
	OUTPOST_CONFIG="" q send --to +15555550100 --text "hello $arch" >/dev/null || fail "$arch: send"
	echoed=""
	for _ in $(seq 240); do
		if OUTPOST_CONFIG="" q inbox --json | grep -q "echo: hello $arch"; then
			echoed=1
			break
		fi
		sleep 0.5
	done
	[ -n "$echoed" ] || fail "$arch: no echo in the inbox: $(cat "$dir/daemon.log")"
	kill -TERM "$daemon_pid"
	wait "$daemon_pid" || fail "$arch: the daemon exited $? on SIGTERM: $(cat "$dir/daemon.log")"
	daemon_pid=""
done
cd "$repo"

echo "check-package: ok in $((SECONDS - step_start))s"
