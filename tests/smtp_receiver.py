#!/usr/bin/env python3
"""A real SMTP server for the delivery tests (tests/delivery_channels.rs), on 127.0.0.1 only.

Started by a test as a child process (aiosmtpd, `python3 -m pip install aiosmtpd`). It binds a free
port itself and prints `READY <port>` on stdout, so there is no race for a port. It stops when its
stdin closes, so a test that dies does not leave it behind.

Modes:
  --tls CERT KEY      offers STARTTLS with this certificate and refuses every command that needs
                      it (MAIL, RCPT, DATA, AUTH) before STARTTLS (`require_starttls=True`);
                      without --tls it speaks plain text only and does not offer STARTTLS at all.
  --auth USER:PASS    requires SMTP AUTH (PLAIN/LOGIN, only over TLS) with these credentials.
  --fail-first N      answers the first N DATA commands with --fail-reply (default a 451).
  --hang              never answers DATA (a server that stopped responding).

Every accepted message is written to DIR/<n>.eml (the bytes as received) and described in one JSON
line of DIR/received.jsonl, parsed back with Python's own `email` package (an independent MIME
parser): Message-ID, envelope, whether the session was under TLS, the authenticated user, the
headers, and each leaf part with its decoded payload in base64. Like a receiving mail system that
deduplicates, a second message with a Message-ID already seen is answered 250 but marked
`"duplicate": true` and not written again.
"""

import argparse
import asyncio
import base64
import email
import email.policy
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult


class Handler:
    def __init__(self, out_dir, fail_first, fail_reply, hang):
        self.hang = hang
        self.out_dir = out_dir
        self.fail_left = fail_first
        self.fail_reply = fail_reply
        self.seen = set()
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        if self.hang:
            await asyncio.Event().wait()
        if self.fail_left > 0:
            self.fail_left -= 1
            self.log({"refused": self.fail_reply})
            return self.fail_reply
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        message_id = (msg.get("Message-ID") or "").strip()
        duplicate = bool(message_id) and message_id in self.seen
        self.seen.add(message_id)
        parts = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            payload = part.get_payload(decode=True) or b""
            parts.append({
                "content_type": part.get_content_type(),
                "filename": part.get_filename(),
                "disposition": part.get_content_disposition(),
                "data_b64": base64.b64encode(payload).decode("ascii"),
            })
        record = {
            "message_id": message_id,
            "duplicate": duplicate,
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "tls": session.ssl is not None,
            "auth_user": getattr(session, "auth_data", None),
            "headers": [[k, str(v)] for k, v in msg.items()],
            "parts": parts,
        }
        if not duplicate:
            self.count += 1
            name = "%d.eml" % self.count
            with open(os.path.join(self.out_dir, name), "wb") as f:
                f.write(raw)
            record["file"] = name
        self.log(record)
        return "250 OK"

    def log(self, record):
        with open(os.path.join(self.out_dir, "received.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def authenticator_for(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        login = getattr(auth_data, "login", b"")
        secret = getattr(auth_data, "password", b"")
        if login == user.encode() and secret == password.encode():
            return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)
    return authenticate


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--auth")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--fail-reply", default="451 4.3.0 Try again later")
    p.add_argument("--hang", action="store_true")
    a = p.parse_args()
    handler = Handler(a.dir, a.fail_first, a.fail_reply, a.hang)
    kwargs = {"hostname": "receiver.test", "ident": "acp-test-receiver"}
    if a.tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.tls[0], a.tls[1])
        kwargs.update(tls_context=ctx, require_starttls=True)
    if a.auth:
        user, password = a.auth.split(":", 1)
        kwargs.update(authenticator=authenticator_for(user, password), auth_required=True, auth_require_tls=True)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, **kwargs), host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    print("READY %d" % port, flush=True)
    # Run until the test closes our stdin (or dies).
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
