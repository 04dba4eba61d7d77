# An XMPP client on slixmpp that a Go test drives: commands arrive as JSON
# lines on stdin, and every stanza received leaves as a JSON line on stdout.
# It logs in once; when the stream ends it reports "disconnected" and exits,
# so that a login again is a new process with no state left from the last.
#
# usage: driver.py JID PASSWORD HOST PORT CAFILE RESOURCE

import asyncio
import json
import sys
import threading

import slixmpp
from slixmpp.xmlstream import ET
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

NS = "jabber:client"
RECEIPTS = "urn:xmpp:receipts"


def emit(ev):
    sys.stdout.write(json.dumps(ev) + "\n")
    sys.stdout.flush()


class Driver(slixmpp.ClientXMPP):
    def __init__(self, jid, password, host, port, cafile):
        super().__init__(jid, password)
        self.target = (host, port)
        self.ca_certs = cafile
        # The test decides about subscriptions; slixmpp would otherwise
        # accept every request and subscribe back on the test's behalf.
        self.auto_authorize = None
        self.auto_subscribe = False
        # Receipts are parsed, and the feature advertised, but never sent
        # or requested unless a command says so.
        self.register_plugin("xep_0184", {"auto_ack": False, "auto_request": False})
        self.started = False
        self.failure = ""
        self.done = asyncio.Event()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", self.on_failed_auth)
        self.add_event_handler("failed_all_auth", lambda _: self.fail("authentication failed: " + self.failure))
        self.add_event_handler("ssl_invalid_chain", lambda e: self.fail("TLS: %s" % e))
        self.add_event_handler("connection_failed", lambda e: self.fail("connection failed: %s" % e))
        self.add_event_handler("stream_error", self.on_stream_error)
        self.add_event_handler("disconnected", self.on_disconnected)
        # slixmpp's own handlers see only messages with a body; the tests
        # want every message (receipts, errors, empty ones) and presence.
        self.register_handler(Callback("xt message", MatchXPath("{%s}message" % NS), self.on_message))
        self.register_handler(Callback("xt presence", MatchXPath("{%s}presence" % NS), self.on_presence))

    async def get_dns_records(self, domain, port=None):
        # The test's server has no DNS name: go to the loopback address
        # while TLS still checks the certificate against the domain.
        return [(domain, self.target[0], self.target[1])]

    async def on_start(self, _):
        # As RFC 6121 has a client begin: the roster, then the initial
        # presence that makes the server route chat messages here.
        try:
            await self.get_roster(timeout=10)
            self.send_presence()
            # Once the server answers, it has taken the presence in: what
            # the test sends after "connected" finds this client online.
            await self.ping_server()
        except Exception as e:  # the test gets the reason, then the exit
            self.fail("login: %r" % e)
            return
        self.started = True
        emit({"kind": "connected", "from": str(self.boundjid)})

    def ping_server(self):
        iq = self.make_iq_get(ito=self.boundjid.domain)
        iq.append(ET.Element("{urn:xmpp:ping}ping"))
        return iq.send(timeout=10)

    def on_failed_auth(self, stanza):
        self.failure = stanza["condition"] or "failure"
        if stanza["text"]:
            self.failure += ": " + stanza["text"]

    def fail(self, why):
        if self.started:
            emit({"kind": "error", "type": "client", "error": why})
            return
        emit({"kind": "failed", "error": why})
        self.done.set()

    def on_stream_error(self, err):
        emit({"kind": "error", "type": "stream", "error": err["condition"], "body": err["text"], "xml": str(err)})

    def on_disconnected(self, reason):
        if self.started:
            emit({"kind": "disconnected", "body": str(reason or "")})
        elif not self.done.is_set():
            emit({"kind": "failed", "error": "disconnected before login: %s" % (self.failure or reason or "no reason")})
        self.done.set()

    def base(self, stanza):
        return {
            "from": str(stanza["from"]),
            "id": stanza.xml.get("id", ""),
            "type": stanza.xml.get("type", ""),
            "xml": str(stanza),
        }

    def on_message(self, msg):
        ev = self.base(msg)
        ev["body"] = msg["body"]
        if ev["type"] == "error":
            ev["kind"] = "error"
            ev["error"] = msg["error"]["condition"]
            ev["status"] = msg["error"]["text"]
        elif msg.xml.find("{%s}received" % RECEIPTS) is not None:
            ev["kind"] = "receipt"
            ev["receipt_for"] = msg["receipt"]
        else:
            ev["kind"] = "message"
        ev["receipt_request"] = msg.xml.find("{%s}request" % RECEIPTS) is not None
        emit(ev)

    def on_presence(self, pres):
        ev = self.base(pres)
        t = ev["type"]
        if t in ("subscribe", "subscribed", "unsubscribe", "unsubscribed"):
            ev["kind"] = t
        elif t == "error":
            ev["kind"] = "error"
            ev["error"] = pres["error"]["condition"]
            ev["status"] = pres["error"]["text"]
        else:
            ev["kind"] = "presence"
            ev["show"] = pres["show"]
            ev["status"] = pres["status"]
        emit(ev)

    def command(self, c):
        op = c["cmd"]
        if op == "send":
            msg = self.make_message(mto=c["to"], mbody=c["body"], mtype=c.get("type") or None)
            msg["id"] = c["id"]
            if c.get("receipt"):
                msg["request_receipt"] = True
            msg.send()
        elif op == "receipt":
            msg = self.Message()
            msg["to"] = c["to"]
            msg["id"] = c["id"]
            msg["receipt"] = c["for"]
            msg.send()
        elif op == "subscribe":
            self.client_roster[c["jid"]].subscribe()
        elif op == "unsubscribe":
            self.client_roster[c["jid"]].unsubscribe()
        elif op == "approve":
            self.client_roster[c["jid"]].authorize()
        elif op == "deny":
            self.client_roster[c["jid"]].unauthorize()
        elif op == "auto_approve":
            self.auto_authorize = True if c["on"] else None
        elif op == "presence":
            if c.get("show") == "unavailable":
                self.send_presence(ptype="unavailable", pstatus=c.get("status") or None)
            else:
                self.send_presence(pshow=c.get("show") or None, pstatus=c.get("status") or None)
        elif op == "raw":
            self.send_raw(c["xml"])
        elif op == "sync":
            return self.ping_server()
        elif op == "close":
            self.disconnect(wait=2)
        else:
            raise ValueError("unknown command %r" % op)


def read_commands(loop, xmpp):
    for line in sys.stdin:
        loop.call_soon_threadsafe(run_command, xmpp, json.loads(line))
    # The test process went away or closed our stdin: log out.
    loop.call_soon_threadsafe(run_command, xmpp, {"cmd": "close", "n": 0})


def run_command(xmpp, c):
    try:
        pending = xmpp.command(c)
    except Exception as e:
        ack(c, e)
        return
    if pending is None:
        ack(c, None)
        return
    # A command that waits for the server acknowledges once it answered.
    def done(f):
        ack(c, f.exception())
    asyncio.ensure_future(pending).add_done_callback(done)


def ack(c, exc):
    if c.get("n"):
        emit({"kind": "ack", "n": c["n"], "error": "%s: %r" % (c["cmd"], exc) if exc else ""})


async def main():
    jid, password, host, port, cafile, resource = sys.argv[1:7]
    xmpp = Driver("%s/%s" % (jid, resource), password, host, int(port), cafile)
    xmpp.connect((host, int(port)), use_ssl=False, force_starttls=True)
    threading.Thread(target=read_commands, args=(asyncio.get_running_loop(), xmpp), daemon=True).start()
    await xmpp.done.wait()


if __name__ == "__main__":
    asyncio.run(main())
