#!/usr/bin/env bash
# Installs what the tests need (Debian packages), then runs the checks CI
# runs: gofmt, go vet, and the whole test suite under the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real peers the tests drive: gammu (an AT client pointed at the simulator),
# python3-gammu (a reference PDU codec), libwbxml2-utils (xml2wbxml and
# wbxml2xml, the reference WBXML codec) and mosquitto (the hub the sync
# tests start on a loopback port of their own), swaks (the SMTP client that
# mails the email connector; libnet-ssleay-perl gives it STARTTLS), python3-aiosmtpd (the relay it mails to),
# prosody (the XMPP server the XMPP tests start on a loopback port of their
# own), python3-slixmpp (the XMPP client they drive), prometheus for
# promtool (check metrics on /metrics) and chromium (the browser the web
# console's tests drive headless). The package check
# (scripts/check-package.sh): lintian, systemd (systemd-analyze), udev
# (udevadm test reads the rules), qemu-user-static (the arm binaries run
# under it), file, adduser, iproute2 (the loopback of the daemons' own
# network namespace).
packages=(gammu python3-gammu libwbxml2-utils mosquitto mosquitto-clients swaks libnet-ssleay-perl python3-aiosmtpd prosody python3-slixmpp prometheus chromium
	lintian systemd udev qemu-user-static file adduser iproute2)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	echo "installing: ${missing[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# The package may start a system broker on 1883, the port Outpost's
	# defaults use; the tests start their own.
	$sudo service mosquitto stop >/dev/null 2>&1 || true
	# Likewise a system XMPP server on 5222, the port clients default to.
	$sudo service prosody stop >/dev/null 2>&1 || true
	# And a system Prometheus (on 9090), which the tests do not use.
	$sudo service prometheus stop >/dev/null 2>&1 || true
fi
# Tests that need these tools fail, rather than skip, when they are absent.
export OUTPOST_REQUIRE_TOOLS=1

echo "gofmt -l"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "go vet ./..."
go vet ./...

echo "go test -race -count=1 ./..."
# The end-to-end tests mostly wait on daemons, modems and servers: four of
# those that run a daemon of their own run at once (-parallel). cmd/outpost
# takes about 4.5 minutes on a 2-core machine; 15 is go test's bound.
go test -race -count=1 -parallel 4 -timeout 15m "$@" ./...

echo "scripts/check-package.sh"
scripts/check-package.sh
