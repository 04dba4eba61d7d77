#!/usr/bin/env bash
# Builds Outpost's static binaries (CGO off) and a .deb per architecture
# into dist/: amd64, arm64, armhf (ARMv7: Pi 2 and later on a 32-bit OS)
# and armel (ARMv6: Pi Zero and 1). The version comes from git and is
# stamped into the binary ("outpost version") and the packages.
#
# usage: scripts/package.sh [ARCH…]    (default: all four)
# DEB_MAINTAINER overrides the packages' Maintainer (default: the last
# commit's author).
set -euo pipefail
cd "$(dirname "$0")/.."

arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(amd64 arm64 armhf armel)

# A Debian version that sorts like the history: 1.2 on the tag v1.2
# itself, 1.2+5.gHASH five commits later; before any tag, 0.0.0+N.gHASH
# with N the commit count. A build from a modified tree says so (.dirty).
debian_version() {
	local d re='^v?([0-9][0-9A-Za-z.~]*)(-([0-9]+)-g([0-9a-f]+))?(-dirty)?$'
	if ! d=$(git describe --tags --dirty 2>/dev/null); then
		d=$(git describe --always --dirty)
		local v="0.0.0+$(git rev-list --count HEAD).g${d%-dirty}"
		[ "$d" = "${d%-dirty}" ] || v+=".dirty"
		echo "$v"
	elif [[ $d =~ $re ]]; then
		local v=${BASH_REMATCH[1]}
		[ -z "${BASH_REMATCH[3]}" ] || v+="+${BASH_REMATCH[3]}.g${BASH_REMATCH[4]}"
		[ -z "${BASH_REMATCH[5]}" ] || v+=".dirty"
		echo "$v"
	else
		echo "package.sh: the tag in \"$d\" is not a version (v1.2.3)" >&2
		return 1
	fi
}

describe=$(git describe --tags --always --dirty)
version=$(debian_version)
commit=$(git rev-parse HEAD)
commit_time=$(git log -1 --format=%ct)
build_date=$(git log -1 --format=%cs)
maintainer=${DEB_MAINTAINER:-$(git log -1 --format='%an <%ae>')}
ldflags="-s -w -X main.version=$version -X github.com/outpost-sms/outpost/store/clock.buildDate=$build_date"

mkdir -p dist
for arch in "${arches[@]}"; do rm -f "dist/outpost-linux-$arch" dist/outpost_*_"$arch".deb; done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

goarch() {
	case $1 in
	amd64 | arm64) echo "GOARCH=$1" ;;
	armhf) echo "GOARCH=arm GOARM=7" ;;
	armel) echo "GOARCH=arm GOARM=6" ;;
	*)
		echo "package.sh: unknown architecture $1 (amd64, arm64, armhf, armel)" >&2
		return 1
		;;
	esac
}

echo "outpost $version ($describe)"
# All at once: one build leaves a core idle for long stretches (the
# SQLite package is one huge compile, then the link).
declare -A pids
for arch in "${arches[@]}"; do
	env_=$(goarch "$arch")
	echo "build dist/outpost-linux-$arch"
	# shellcheck disable=SC2086 # env_ is words on purpose
	env CGO_ENABLED=0 GOOS=linux $env_ go build -trimpath -ldflags "$ldflags" \
		-o "dist/outpost-linux-$arch" ./cmd/outpost >"$work/build-$arch.log" 2>&1 &
	pids[$arch]=$!
done
for arch in "${arches[@]}"; do
	wait "${pids[$arch]}" || {
		cat "$work/build-$arch.log" >&2
		echo "package.sh: the $arch build failed" >&2
		exit 1
	}
done

# The man page is the --help text, so it cannot fall behind: read from a
# binary this machine runs (the host's own architecture), else built for it.
host_bin=""
case $(go env GOHOSTARCH) in
amd64) [ ! -x dist/outpost-linux-amd64 ] || host_bin=dist/outpost-linux-amd64 ;;
arm64) [ ! -x dist/outpost-linux-arm64 ] || host_bin=dist/outpost-linux-arm64 ;;
esac
if [ -z "$host_bin" ]; then
	host_bin=$work/outpost-host
	CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$host_bin" ./cmd/outpost
fi

# roff-escape text for a no-fill block: backslashes, and lines that would
# read as requests.
roff_text() { sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }

man_page() {
	local date
	date=$(date -u -d "@$commit_time" +%Y-%m-%d)
	cat <<ROFF
.TH OUTPOST 8 "$date" "outpost $version" "System Administration"
.SH NAME
outpost \\- SMS gateway for places with bad or no internet
.SH SYNOPSIS
.B outpost
.I command
.RI [ flags ]
.SH DESCRIPTION
Outpost drives GSM modems over AT commands and keeps every message in a
SQLite store until it is delivered: by SMS, over its local MQTT broker, to a
hub, by email, XMPP, webhooks and an HTTP API.
.B outpost run
is the daemon (the
.B outpost
service runs it); the other commands talk to it over its socket.
.PP
.nf
$("$host_bin" help | roff_text)
.fi
.SH FILES
.TP
.I /etc/outpost/outpost.toml
the service's config (a conffile); check a change with
.B outpost config check
before
.BR "systemctl restart outpost" .
.TP
.I /var/lib/outpost
the service's data: the SQLite database and the CLI's socket
.RI ( outpost.sock ).
Removed only when the package is purged.
.TP
.I /dev/outpost/
a stable name per USB serial port,
.IR SERIAL \\-if NN ,
made by the package's udev rules, which also keep ModemManager off these ports.
.SH ENVIRONMENT
.TP
.B OUTPOST_CONFIG
the config file commands use when not given
.BR \\-\\-config ;
set but empty, the defaults
.RI ( ./outpost\\-data ).
Without it, commands that talk to the daemon read
.I /etc/outpost/outpost.toml
when it is there.
.TP
.B NOTIFY_SOCKET
set by systemd: the daemon says READY=1 there once it serves.
.SH SEE ALSO
.BR systemctl (1),
.BR journalctl (1)
ROFF
}

copyright() {
	cat <<TEXT
Outpost, an SMS gateway
Source: https://github.com/outpost-sms/outpost

Files: all but those below
Copyright: the Outpost authors
License: the repository names no license yet: ask its authors before you
 redistribute this package.

/usr/bin/outpost is a static binary: it holds the Go standard library and
the Go modules listed here, each under its license, whose text follows.

TEXT
	local mods
	mods=$(go list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' ./cmd/outpost | sort -u)
	echo " - Go $(go env GOVERSION) (the standard library)"
	while read -r path ver _; do echo " - $path $ver"; done <<<"$mods"
	printf '\n--- Go %s: LICENSE\n\n' "$(go env GOVERSION)"
	cat "$(go env GOROOT)/LICENSE"
	while read -r path ver dir; do
		local found=""
		# A module's own licenses; modernc's LICENSE-3RD-PARTY.md lists
		# what it was made from, test tools included.
		for f in "$dir"/LICENSE* "$dir"/COPYING* "$dir"/NOTICE* "$dir"/epl-v* "$dir"/edl-v*; do
			[ -f "$f" ] && [[ $f != */LICENSE-3RD-PARTY* ]] || continue
			found=1
			printf '\n--- %s %s: %s\n\n' "$path" "$ver" "$(basename "$f")"
			# Debian's policy (and lintian, as an error) wants the Apache
			# 2.0 text referred to, not copied: every system has it.
			if grep -q 'Version 2.0, January 2004' "$f"; then
				echo "The Apache License, Version 2.0: /usr/share/common-licenses/Apache-2.0"
			else
				cat "$f"
			fi
		done
		if [ -z "$found" ]; then
			echo "package.sh: no license file in $path $ver ($dir)" >&2
			return 1
		fi
	done <<<"$mods"
}

changelog() {
	cat <<TEXT
outpost ($version) unstable; urgency=medium

  * Built from git commit $commit
    ($describe).

 -- $maintainer  $(date -u -R -d "@$commit_time")
TEXT
}

man_page >"$work/outpost.8"
copyright >"$work/copyright"
changelog >"$work/changelog"

for arch in "${arches[@]}"; do
	root=$work/root-$arch
	install -D -m 0755 "dist/outpost-linux-$arch" "$root/usr/bin/outpost"
	install -D -m 0644 scripts/packaging/outpost.toml "$root/etc/outpost/outpost.toml"
	install -D -m 0644 scripts/packaging/outpost.service "$root/lib/systemd/system/outpost.service"
	install -D -m 0644 scripts/packaging/61-outpost.rules "$root/lib/udev/rules.d/61-outpost.rules"
	install -D -m 0644 scripts/packaging/lintian-overrides "$root/usr/share/lintian/overrides/outpost"
	install -D -m 0644 "$work/outpost.8" "$root/usr/share/man/man8/outpost.8"
	install -D -m 0644 "$work/copyright" "$root/usr/share/doc/outpost/copyright"
	install -D -m 0644 "$work/changelog" "$root/usr/share/doc/outpost/changelog"
	gzip -9n "$root/usr/share/man/man8/outpost.8" "$root/usr/share/doc/outpost/changelog"
	install -d -m 0755 "$root/DEBIAN"
	install -m 0755 scripts/packaging/debian/postinst scripts/packaging/debian/prerm scripts/packaging/debian/postrm "$root/DEBIAN/"
	echo /etc/outpost/outpost.toml >"$root/DEBIAN/conffiles"
	cat >"$root/DEBIAN/control" <<CONTROL
Package: outpost
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: adduser
Section: comm
Priority: optional
Description: SMS gateway for places with bad or no internet
 Outpost drives GSM modems over AT commands and keeps every message in a
 SQLite store until it is delivered: by SMS, over its local MQTT broker, to
 a hub, by email, XMPP, webhooks and an HTTP API.
 .
 This package holds the daemon and its command line, a sandboxed systemd
 service (user outpost, data in /var/lib/outpost, config in
 /etc/outpost/outpost.toml), and udev rules that give each USB modem port a
 stable name under /dev/outpost/ and keep ModemManager away from them.
CONTROL
	(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
	# Files dated by the commit: the same commit builds the same package.
	find "$root" -exec touch -h -d "@$commit_time" {} +
	deb=dist/outpost_${version}_$arch.deb
	# In the background too: xz takes a core for about 12 s a package.
	SOURCE_DATE_EPOCH=$commit_time dpkg-deb --build --root-owner-group "$root" "$deb" >"$work/deb-$arch.log" 2>&1 &
	pids[$arch]=$!
done
for arch in "${arches[@]}"; do
	wait "${pids[$arch]}" || {
		cat "$work/deb-$arch.log" >&2
		echo "package.sh: dpkg-deb failed for $arch" >&2
		exit 1
	}
	echo "package dist/outpost_${version}_$arch.deb"
done
