#!/usr/bin/python3
"""A real SMTP server for the notification tests (Debian's python3-aiosmtpd).

Usage: smtp_server.py PORT MAILDIR
Accepts mail on 127.0.0.1:PORT and stores each message, as received, in the
Maildir MAILDIR (one file per recipient, like a local delivery agent).
Refuses, with 550, every recipient whose address starts with "refuse".
Runs until killed.
"""

import mailbox
import signal
import sys
import threading

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, path):
        self.box = mailbox.Maildir(path, create=True)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("refuse"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        for rcpt in envelope.rcpt_tos:
            msg = mailbox.MaildirMessage(envelope.original_content)
            msg["X-Envelope-To"] = rcpt
            self.box.add(msg)
        return "250 Message accepted for delivery"


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Handler(path), hostname="127.0.0.1", port=port)
    controller.start()
    print("listening", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    controller.stop()


if __name__ == "__main__":
    main()
