"""Schemathesis hooks: sign every generated request as a partner agency would
(RFC 9421, Ed25519 dev key of the agency in GATEWAY_SIGNER_DIR), so that the
generated bodies and parameters get past signature verification and reach the
decoders, validators and handlers behind it.

Used by tests/schemathesis.rs (SCHEMATHESIS_HOOKS=hooks, PYTHONPATH=this dir).
Signing follows docs/partner-walkthrough.sh: one line per covered component,
then "@signature-params"; Content-Digest over the exact bytes sent.
"""

import base64
import hashlib
import os
import time
import uuid
from urllib.parse import urlsplit

import requests
import schemathesis
from cryptography import x509
from cryptography.hazmat.primitives import serialization

_DIR = os.environ["GATEWAY_SIGNER_DIR"]
with open(os.path.join(_DIR, "ed25519.key.pem"), "rb") as f:
    _KEY = serialization.load_pem_private_key(f.read(), password=None)
with open(os.path.join(_DIR, "ed25519.crt.pem"), "rb") as f:
    _CERT = x509.load_pem_x509_certificate(f.read())
_KEYID = hashlib.sha256(_CERT.public_bytes(serialization.Encoding.DER)).hexdigest()


class Rfc9421(requests.auth.AuthBase):
    """Adds Content-Digest, Signature-Input and Signature to a prepared request."""

    def __call__(self, r):
        url = urlsplit(r.url)
        lines = [f'"@method": {r.method}', f'"@path": {url.path}']
        components = ['"@method"', '"@path"']
        if url.query:
            lines.append(f'"@query": ?{url.query}')
            components.append('"@query"')
        body = r.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        if body is not None and r.method in ("POST", "PUT"):
            digest = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
            r.headers["Content-Digest"] = digest
            content_type = r.headers.get("Content-Type", "")
            lines.append(f'"content-type": {content_type}')
            lines.append(f'"content-digest": {digest}')
            components += ['"content-type"', '"content-digest"']
        params = (
            "(" + " ".join(components) + ")"
            + f';created={int(time.time())};keyid="{_KEYID}";alg="ed25519";nonce="{uuid.uuid4().hex}"'
        )
        lines.append(f'"@signature-params": {params}')
        signature = _KEY.sign("\n".join(lines).encode("utf-8"))
        r.headers["Signature-Input"] = f"sig1={params}"
        r.headers["Signature"] = "sig1=:" + base64.b64encode(signature).decode() + ":"
        return r


@schemathesis.hook
def before_call(context, case, kwargs):
    # The generated Signature headers (if any) are replaced by real ones.
    for name in ("Signature", "Signature-Input", "Content-Digest"):
        if case.headers:
            case.headers.pop(name, None)
    kwargs["auth"] = Rfc9421()
