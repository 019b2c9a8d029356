"""aiosmtpd handler for the crash tests (tests/integration/crash.rs).

aiosmtpd's Mailbox (every accepted message lands in MAILDIR/new/), except that after storing a
message it waits the number of milliseconds written in DELAY_FILE (0 or absent: no wait) before
answering 250. A client killed during that wait has delivered a message it never saw accepted:
the case that at-least-once delivery with a stable Message-ID exists for.

    python -m aiosmtpd -n -l 127.0.0.1:PORT -c slow_mailbox.SlowMailbox MAILDIR DELAY_FILE
"""

import asyncio

from aiosmtpd.handlers import Mailbox


class SlowMailbox(Mailbox):
    def __init__(self, mail_dir, delay_file):
        super().__init__(mail_dir)
        self.delay_file = delay_file

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 2:
            parser.error("usage: SlowMailbox MAILDIR DELAY_FILE")
        return cls(args[0], args[1])

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        try:
            with open(self.delay_file) as f:
                delay_ms = int(f.read().strip() or "0")
        except (OSError, ValueError):
            delay_ms = 0
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)
        return reply
