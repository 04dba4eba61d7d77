"""An SMTP relay for the email tests (aiosmtpd): each mail it takes is
written to DIR/NNNN.eml with its envelope as X-Envelope-From and
X-Envelope-To headers; while DIR/answer exists, every mail is answered
with its content instead (e.g. "451 4.3.0 try later"). Prints "ready"
once it listens. Usage: smtp_relay.py PORT DIR"""
import os
import sys
import threading

from aiosmtpd.controller import Controller


class Recorder:
    def __init__(self, folder):
        self.folder = folder
        self.n = len([f for f in os.listdir(folder) if f.endswith(".eml")])

    async def handle_DATA(self, server, session, envelope):
        answer = os.path.join(self.folder, "answer")
        if os.path.exists(answer):
            with open(answer) as f:
                return f.read().strip()
        self.n += 1
        tmp = os.path.join(self.folder, ".%04d.eml" % self.n)
        with open(tmp, "wb") as f:
            f.write(b"X-Envelope-From: " + envelope.mail_from.encode() + b"\r\n")
            f.write(b"X-Envelope-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(self.folder, "%04d.eml" % self.n))
        return "250 2.0.0 stored as %d" % self.n


def main():
    port, folder = int(sys.argv[1]), sys.argv[2]
    c = Controller(Recorder(folder), hostname="127.0.0.1", port=port)
    c.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
