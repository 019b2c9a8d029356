#!/usr/bin/env python3
"""An SMTP server for the TLS tests: aiosmtpd requiring STARTTLS (or speaking implicit TLS) and
AUTH, with a certificate for 127.0.0.1 issued by a throwaway CA (trustme).

    tls_server.py starttls|tls PORT MAILDIR CA_PEM_OUT

The login and password are read from SMTP_USER and SMTP_PASS. The CA's certificate is written to
CA_PEM_OUT (what tradewarden's `ca_file` names); accepted messages land in MAILDIR/new. Prints
READY once listening, then runs until killed.
"""
import os
import ssl
import sys
import time

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

mode, port, maildir, ca_out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ca = trustme.CA()
ca.cert_pem.write_to_path(ca_out)
server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
user, password = os.environ["SMTP_USER"].encode(), os.environ["SMTP_PASS"].encode()


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (user, password)
    # handled=False: aiosmtpd answers the failure itself (535); with handled=True it says nothing.
    return AuthResult(success=ok, handled=False)


auth = {"authenticator": authenticator, "auth_required": True}
if mode == "starttls":
    controller = Controller(
        Mailbox(maildir),
        hostname="127.0.0.1",
        port=port,
        tls_context=server_ctx,
        require_starttls=True,
        auth_require_tls=True,
        **auth,
    )
elif mode == "tls":
    # The whole connection is TLS; aiosmtpd's auth_require_tls only recognises STARTTLS.
    controller = Controller(
        Mailbox(maildir), hostname="127.0.0.1", port=port, ssl_context=server_ctx, auth_require_tls=False, **auth
    )
else:
    sys.exit(f"unknown mode {mode}")
controller.start()
print("READY", flush=True)
while True:
    time.sleep(3600)
