#!/usr/bin/env bash
# Runs the benchmarks that check Outpost's speed and memory targets and
# prints their figures: durable ingest into SQLite (group commit,
# synchronous=FULL), PDU decode beside warthog618/sms's own, encode,
# WBXML decode of a 14 KB form, and store-and-forward to a hub beside a
# Mosquitto bridge (publish, drain, kept after kill -9), and the
# appliance's figures: memory idle and while a backlog drains, bytes
# written at idle.
# Usage: scripts/bench.sh [-count N]
# OUTPOST_FIG_ONLY=1 runs the appliance's figures alone (about 10 minutes;
# OUTPOST_FIG_BACKLOG=100000 for acceptance item 5's, 20 minutes more);
# OUTPOST_FIG_IDLE, OUTPOST_FIG_BACKLOG, OUTPOST_FIG_TO change them (see
# cmd/outpost/figbench_test.go).
set -euo pipefail
cd "$(dirname "$0")/.."
count=3
[ "${1:-}" = "-count" ] && count=$2

figures() {
	echo "== the appliance: the release binary on its defaults; VmRSS idle (after OUTPOST_FIG_SETTLE, default 30s, and OUTPOST_FIG_IDLE, default 2m) and while OUTPOST_FIG_BACKLOG messages (default 20,000) to OUTPOST_FIG_TO (default mqtt) drain; bytes written at idle"
	OUTPOST_FIG_BENCH=1 go test -count=1 -timeout 3h -run '^TestFiguresBench$' -v ./cmd/outpost | grep -E '^figures|FAIL|Error|error'
}
if [ -n "${OUTPOST_FIG_ONLY:-}" ]; then
	figures
	exit
fi

echo "== store: durable ingest (an inbound message and its delivery, with its event, per op); the hub queue's age check on 100,000 messages"
go test -run '^$' -bench 'Ingest|ExpireHub' -benchmem -count "$count" ./store
echo
echo "== pdu: decode (ours and warthog618/sms's of the same PDUs), encode"
go test -run '^$' -bench . -benchmem -count "$count" ./pdu
echo
echo "== pdu/xform: WBXML decode of a 14 KB form (plain and zlib), encode"
go test -run '^$' -bench . -benchmem -count "$count" ./pdu/xform
echo
echo "== hub store-and-forward: Outpost against a Mosquitto bridge (real Mosquitto, loopback); one device (mosquitto_pub -l -q 1) against Mosquitto with persistence"
OUTPOST_HUB_BENCH=1 go test -count=1 -run '^TestHubBench$' -v ./cmd/outpost | grep -E '^(edge|outpost|mosquitto|targets|[0-9]+ QoS)|FAIL'
echo
echo "== retention: prune old finished messages in batches while sends go on (OUTPOST_PRUNE_BENCH old messages, default 1,000,000); the longest wait of a send"
OUTPOST_PRUNE_BENCH=${OUTPOST_PRUNE_BENCH:-1000000} go test -count=1 -timeout 30m -run '^TestPruneBench$' -v ./bridge | grep -E '^(prune|    prune_bench)|FAIL'
echo
echo "== statistics: outpost stats over 7 days of OUTPOST_STATS_BENCH messages (default 1,000,000, over 100 days) while sends go on; each query's time and plan"
OUTPOST_STATS_BENCH=${OUTPOST_STATS_BENCH:-1000000} go test -count=1 -timeout 30m -run '^TestStatsBench$' -v ./store | grep -E '^stats|FAIL'
echo
figures
