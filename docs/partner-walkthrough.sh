#!/usr/bin/env bash
# Submitting a signed document by hand, with nothing but openssl and curl —
# what a partner integrator does before writing any code. The README walks
# through these same steps; tests/walkthrough.rs runs this script against a
# real gateway so the instructions stay true.
#
# usage: docs/partner-walkthrough.sh [GATEWAY_URL] [PKI_DIR] [DOCUMENT]
#   defaults: http://127.0.0.1:8080  data/pki  tests/fixtures/native/court/handover.notice.xml
set -euo pipefail

url=${1:-http://127.0.0.1:8080}
pki=${2:-data/pki}
doc=${3:-tests/fixtures/native/court/handover.notice.xml}
key=$pki/court.620102/ed25519.key.pem     # the court's (dev) signing key
cert=$pki/court.620102/ed25519.crt.pem
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. keyid = lowercase hex SHA-256 of the signer certificate in DER.
keyid=$(openssl x509 -in "$cert" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)

# 2. Content-Digest (RFC 9530) over the exact bytes sent.
digest="sha-256=:$(openssl dgst -sha256 -binary "$doc" | openssl base64 -A):"

# 3. The signature base (RFC 9421 §2.5): one line per covered component, then
#    the signature parameters; no newline after the last line.
created=$(date +%s)
params="(\"@method\" \"@path\" \"content-type\" \"content-digest\");created=$created;keyid=\"$keyid\";alg=\"ed25519\""
printf '"@method": POST\n"@path": /api/v1/documents\n"content-type": application/xml\n"content-digest": %s\n"@signature-params": %s' \
  "$digest" "$params" > "$work/base"

# 4. Sign the base. Ed25519 signs the raw bytes (-rawin); the signature is 64 raw bytes.
openssl pkeyutl -sign -rawin -inkey "$key" -in "$work/base" -out "$work/sig"
signature=$(openssl base64 -A -in "$work/sig")

# 5. Post it.
status=$(curl -sS -o "$work/receipt.json" -D "$work/headers" -w '%{http_code}' \
  -X POST "$url/api/v1/documents" \
  -H 'Content-Type: application/xml' \
  -H "Content-Digest: $digest" \
  -H "Signature-Input: sig1=$params" \
  -H "Signature: sig1=:$signature:" \
  --data-binary @"$doc")
echo "HTTP $status"
cat "$work/receipt.json"; echo

# 6. Verify the gateway's signed receipt: rebuild the response's signature
#    base and check it with the gateway certificate (ECDSA P-256: the raw
#    r‖s signature is turned back into DER for openssl).
header() { grep -i "^$1:" "$work/headers" | head -n1 | cut -d' ' -f2- | tr -d '\r'; }
r_digest=$(header content-digest)
r_type=$(header content-type)
r_params=$(header signature-input | sed 's/^sig1=//')
r_sig=$(header signature | sed 's/^sig1=:\(.*\):$/\1/')
[ "$r_digest" = "sha-256=:$(openssl dgst -sha256 -binary "$work/receipt.json" | openssl base64 -A):" ] \
  || { echo "receipt digest does not match its body"; exit 1; }
printf '"@status": %s\n"content-type": %s\n"content-digest": %s\n"@signature-params": %s' \
  "$status" "$r_type" "$r_digest" "$r_params" > "$work/r_base"
hex=$(printf '%s' "$r_sig" | openssl base64 -d -A | od -An -v -tx1 | tr -d ' \n')
printf 'asn1=SEQUENCE:sig\n[sig]\nr=INTEGER:0x%s\ns=INTEGER:0x%s\n' "${hex:0:64}" "${hex:64:64}" > "$work/der.cnf"
openssl asn1parse -genconf "$work/der.cnf" -out "$work/r_sig.der" > /dev/null
openssl x509 -in "$pki/gateway.crt.pem" -pubkey -noout > "$work/gateway.pub"
openssl dgst -sha256 -verify "$work/gateway.pub" -signature "$work/r_sig.der" "$work/r_base"
case "$status" in 200|201) ;; *) exit 1 ;; esac
