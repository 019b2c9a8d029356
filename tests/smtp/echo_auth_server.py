#!/usr/bin/env python3
"""An SMTP server that rejects every AUTH with a 535 reply echoing the credentials, the way a
misconfigured or debugging relay does: the base64 blob as sent, and the login and password
decoded from it, in plain text and each in base64 (AUTH LOGIN's form).

    echo_auth_server.py PORT

Plain text (no TLS, AUTH allowed without it): the test is about what tradewarden does with the
reply, not about the transport. Prints READY once listening, then runs until killed.
"""
import base64
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class EchoAuth:
    async def auth_PLAIN(self, server, args):
        blob = args[1] if len(args) > 1 else ""
        try:
            _, login, password = base64.b64decode(blob).split(b"\0")
        except Exception:
            login, password = b"?", b"?"
        b64 = lambda b: base64.b64encode(b).decode()
        login, password = login.decode(errors="replace"), password.decode(errors="replace")
        message = (
            f"535 5.7.8 Authentication rejected: AUTH PLAIN {blob} (login {login} password {password}; "
            f"LOGIN {b64(login.encode())} {b64(password.encode())})"
        )
        return AuthResult(success=False, handled=False, message=message)

    async def auth_LOGIN(self, server, args):
        return AuthResult(success=False, handled=False, message="535 5.7.8 LOGIN not offered")


port = int(sys.argv[1])
controller = Controller(EchoAuth(), hostname="127.0.0.1", port=port, auth_require_tls=False)
controller.start()
print("READY", flush=True)
while True:
    time.sleep(3600)
