"""An SMTP sink: accepts every message on 127.0.0.1 and keeps it as a file.

    target/clients-venv/bin/python scripts/smtp_sink.py --port 2525 OUT_DIR

Each message received is written to OUT_DIR as NNNN.eml, the bytes the client
sent after DATA, preceded by X-Sink-Mail-From and X-Sink-Rcpt-To headers
with the envelope, so a check can read it with Python's `email` module. A
file appears whole (written under another name, then renamed), so a reader
polling OUT_DIR never sees half a message. Prints one line when it listens,
runs until SIGINT or SIGTERM. A real SMTP server (aiosmtpd, pinned in
clients/python/requirements.txt), not a mock: the service's mailer speaks
EHLO, MAIL, RCPT and DATA to it as it would to a relay. Used by
scripts/survey-e2e.sh.
"""

import argparse
import itertools
import os
import signal
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out: Path):
        self.out = out
        self.numbers = itertools.count(1)
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            number = next(self.numbers)
        name = f"{number:04d}.eml"
        # Envelope first: the To header may differ from where the mail was sent.
        head = (
            f"X-Sink-Mail-From: {envelope.mail_from}\r\nX-Sink-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        partial = self.out / f".{name}.part"
        partial.write_bytes(head + envelope.original_content)
        os.replace(partial, self.out / name)
        print(f"smtp_sink: {name} from {envelope.mail_from} to {', '.join(envelope.rcpt_tos)}", flush=True)
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory the .eml files are written to")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    # start() returns once the server answers its own test connection.
    controller = Controller(Sink(args.out), hostname=args.host, port=args.port)
    controller.start()
    print(f"smtp_sink: listening on {args.host}:{args.port}, writing to {args.out}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    sys.exit(main())
