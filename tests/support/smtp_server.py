"""A real SMTP server for the mail tests (tests/mail.rs), built on aiosmtpd.

Speaks SMTP on 127.0.0.1:PORT with STARTTLS (required) or implicit TLS using
the certificate and key given, or plain SMTP; requires AUTH PLAIN/LOGIN with
the given user name and password when one is given (over TLS only); and
writes every message it accepts to DIR as one JSON file: the envelope, the
decoded subject and text body, the Message-ID and the raw message. Failed
logins are counted in DIR/auth-failures. Prints "ready" once it listens and
runs until it is killed.

Run with Debian's /usr/bin/python3 (python3-aiosmtpd).
"""

import argparse
import email
import email.policy
import json
import os
import signal
import ssl
import threading
import uuid
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Store:
    def __init__(self, directory):
        self.directory = directory

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "subject": str(message["subject"] or ""),
            "message_id": str(message["message-id"] or ""),
            "content_type": str(message["content-type"] or ""),
            "body": body.get_content() if body is not None else "",
            "raw": raw.decode("utf-8", "replace"),
            "authenticated_as": (session.auth_data.login.decode()
                                 if isinstance(session.auth_data, LoginPassword) else None),
            "tls": session.ssl is not None,
        }
        name = uuid.uuid4().hex
        tmp = os.path.join(self.directory, "." + name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False)
        os.rename(tmp, os.path.join(self.directory, name + ".json"))
        return "250 Message accepted for delivery"


def main():
    # aiosmtpd 1.4 warns about its own use of Session.login_data on every AUTH.
    warnings.simplefilter("ignore", DeprecationWarning)
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--mode", choices=["starttls", "tls", "none"], default="starttls")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()

    context = None
    if args.mode != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    failures = os.path.join(args.dir, "auth-failures")

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == args.user
              and auth_data.password.decode() == args.password)
        if not ok:
            with open(failures, "a") as f:
                f.write(mechanism + "\n")
        # handled=False: aiosmtpd answers 535 itself (with True it would say nothing).
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    kwargs = {}
    if args.user:
        kwargs.update(authenticator=authenticate, auth_required=True, auth_require_tls=args.mode != "none")
    if args.mode == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    elif args.mode == "tls":
        kwargs.update(ssl_context=context)
    controller = Controller(Store(args.dir), hostname="127.0.0.1", port=args.port,
                            server_hostname="localhost", **kwargs)
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
