#!/usr/bin/env python3
"""Independent reader of the gateway's secure-mail messages (tests/channels.rs runs it).

Parses each file given on the command line with Python's standard `email` package (policy `default`,
RFC 5322 / MIME) and prints one JSON line per file: every header of the message and of each part
(decoded), the defects the parser found, the text part decoded, and the attachment's name, type and
SHA-256 with its size, so the Rust test can compare them with what the gateway meant to send.
"""
import email
import email.policy
import email.utils
import hashlib
import json
import sys


def headers(part):
    return [[k, str(v)] for k, v in part.items()]


def read(path):
    with open(path, "rb") as f:
        raw = f.read()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    out = {
        "file": path,
        "content_type": msg.get_content_type(),
        "headers": headers(msg),
        "defects": [repr(d) for d in msg.defects],
        "date": email.utils.parsedate_to_datetime(msg["Date"]).isoformat() if msg["Date"] else None,
        "parts": [],
        "text": None,
        "attachments": [],
    }
    for part in msg.iter_parts():
        out["parts"].append({"content_type": part.get_content_type(), "headers": headers(part),
                             "defects": [repr(d) for d in part.defects]})
        if part.get_content_disposition() == "attachment":
            data = part.get_content()
            out["attachments"].append({
                "filename": part.get_filename(),
                "content_type": part.get_content_type(),
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            })
        elif part.get_content_type() == "text/plain":
            out["text"] = part.get_content().replace("\r\n", "\n")
            out["charset"] = part.get_content_charset()
    return out


def main():
    for path in sys.argv[1:]:
        print(json.dumps(read(path), ensure_ascii=False))


if __name__ == "__main__":
    main()
