#!/usr/bin/env python3
"""Check the exchange log of a corrections-gateway by hand, Python stdlib only.

    verify_proof.py --url URL --vkey VKEY inclusion --leaf-hash HEX
    verify_proof.py --url URL --vkey VKEY consistency --first SIZE

VKEY is the log's verifier key (the one line of DIR/pki/log.pub, or of a
bundle's log.pub). The script fetches the latest signed checkpoint, checks its
Ed25519 signature (signed-note format, c2sp.org/signed-note), then fetches the
proof and recomputes the root with the algorithms of RFC 9162 §2.1.3.2
(inclusion) and §2.1.4.2 (consistency). It trusts nothing the gateway says
except what the signature covers. Exit status 0 means verified. See docs/log.md.
"""

import argparse
import base64
import hashlib
import json
import sys
import urllib.request

# --- Ed25519 verification (RFC 8032 §5.1.7, after its §6 reference code) ---
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


def _add(a, b):
    e1 = (a[1] - a[0]) * (b[1] - b[0]) % P
    e2 = (a[1] + a[0]) * (b[1] + b[0]) % P
    c = 2 * a[3] * b[3] * D % P
    d = 2 * a[2] * b[2] % P
    e, f, g, h = e2 - e1, d - c, d + c, e2 + e1
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s, point):
    acc = (0, 1, 1, 0)
    while s:
        if s & 1:
            acc = _add(acc, point)
        point = _add(point, point)
        s >>= 1
    return acc


def _decode(s):
    y = int.from_bytes(s, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % P)


_GY = 4 * pow(5, P - 2, P) % P
BASE = (_recover_x(_GY, 0), _GY, 1, _recover_x(_GY, 0) * _GY % P)


def ed25519_verify(public, message, signature):
    if len(public) != 32 or len(signature) != 64:
        return False
    a, r = _decode(public), _decode(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % L
    left, right = _mul(s, BASE), _add(r, _mul(k, a))
    return (left[0] * right[2] - right[0] * left[2]) % P == 0 and (
        left[1] * right[2] - right[1] * left[2]
    ) % P == 0


# --- Signed notes and checkpoints (c2sp.org/signed-note, tlog-checkpoint) ---
def open_checkpoint(note, vkey):
    """Returns (origin, size, root) if `note` is signed by `vkey`, else raises."""
    name, key_id, key = vkey.strip().split("+", 2)
    key = base64.b64decode(key)
    if key[0] != 1 or hashlib.sha256(name.encode() + b"\n" + key).digest()[:4].hex() != key_id:
        raise ValueError("malformed verifier key")
    cut = note.rindex("\n\n")
    text, signatures = note[: cut + 1], note[cut + 2 :]
    for line in signatures.splitlines():
        signer, _, blob = line.removeprefix("\u2014 ").partition(" ")
        blob = base64.b64decode(blob)
        if signer == name and blob[:4].hex() == key_id:
            if not ed25519_verify(key[1:], text.encode(), blob[4:]):
                raise ValueError("the checkpoint signature does not verify")
            origin, size, root = text.split("\n")[:3]
            if origin != name:
                raise ValueError("the checkpoint's origin is not the key's name")
            return origin, int(size), base64.b64decode(root)
    raise ValueError("the checkpoint is not signed by this key")


# --- RFC 9162 proof verification ---
def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index, size, leaf_hash, proof):
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        raise ValueError("index beyond the tree")
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise ValueError("proof too long")
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("proof too short")
    return r


def check_consistency(first, second, first_root, second_root, proof):
    """RFC 9162 §2.1.4.2; raises if the first tree is not a prefix of the second."""
    if first == second:
        if proof or first_root != second_root:
            raise ValueError("same size, different trees")
        return
    if first == 0:
        return
    if first > second or not proof:
        raise ValueError("impossible sizes or empty proof")
    if first & (first - 1) == 0:
        proof = [first_root] + proof
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            raise ValueError("proof too long")
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != first_root or sr != second_root:
        raise ValueError("the consistency proof does not verify")


def get(url):
    with urllib.request.urlopen(url, timeout=30) as answer:
        return answer.read().decode()


def main():
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--url", required=True, help="gateway base URL, e.g. http://127.0.0.1:8080")
    cli.add_argument("--vkey", required=True, help="log verifier key (contents of log.pub)")
    sub = cli.add_subparsers(dest="proof", required=True)
    sub.add_parser("inclusion").add_argument("--leaf-hash", required=True, help="hex, e.g. a receipt's leaf_hash")
    sub.add_parser("consistency").add_argument("--first", type=int, required=True, help="size of an older checkpoint")
    args = cli.parse_args()
    base = args.url.rstrip("/") + "/api/v1/log"
    try:
        _, size, root = open_checkpoint(get(base + "/checkpoint"), args.vkey)
        if args.proof == "inclusion":
            answer = json.loads(get(f"{base}/proof/inclusion?leaf_hash={args.leaf_hash}&tree_size={size}"))
            proof = [bytes.fromhex(h) for h in answer["proof"]]
            got = root_from_inclusion(answer["index"], size, bytes.fromhex(args.leaf_hash), proof)
            if got != root:
                raise ValueError("the inclusion proof leads to another root than the checkpoint's")
            print(f"OK: leaf {args.leaf_hash} is entry {answer['index']} of the signed tree of {size} entries")
        else:
            _, first, first_root = open_checkpoint(get(f"{base}/checkpoint?size={args.first}"), args.vkey)
            answer = json.loads(get(f"{base}/proof/consistency?first={first}&second={size}"))
            check_consistency(first, size, first_root, root, [bytes.fromhex(h) for h in answer["proof"]])
            print(f"OK: the signed tree of {first} entries is a prefix of the signed tree of {size}")
    except Exception as e:  # noqa: BLE001 - any failure is a failed verification
        print(f"FAIL: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
