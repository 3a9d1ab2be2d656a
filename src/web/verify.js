// In-browser inclusion check of an exchange-log entry (src/web/audit.rs).
//
// Trusts no verdict of the gateway: it takes the entry's leaf bytes from the
// page, fetches the latest signed checkpoint and the entry's audit path from
// the public log API, checks the checkpoint's Ed25519 signature with the log
// key shown on the page (compare it with the one you hold), recomputes the
// leaf hash SHA-256(0x00 || leaf) and folds the path with SHA-256(0x01 || l || r)
// up to a root (RFC 9162 2.1.3.2), which must equal the checkpoint's root.
// The `root_hash` and `leaf_hash` the proof API also returns are ignored.
"use strict";

(function () {
  const zh = document.documentElement.lang !== "en";
  const say = (z, e) => (zh ? z : e);

  const bytes = (parts) => {
    const total = parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
  const sha256 = async (...parts) =>
    new Uint8Array(await crypto.subtle.digest("SHA-256", bytes(parts)));
  const leafHash = (leaf) => sha256(Uint8Array.of(0), leaf);
  const nodeHash = (l, r) => sha256(Uint8Array.of(1), l, r);
  const fromB64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const fromHex = (s) => {
    if (!/^([0-9a-f]{2})*$/.test(s)) throw new Error("bad hex");
    return Uint8Array.from(s.match(/../g) || [], (h) => parseInt(h, 16));
  };
  const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

  // RFC 9162 2.1.3.2, with BigInt so indexes beyond 2^32 shift correctly.
  async function rootFromInclusion(index, size, leaf, proof) {
    if (index >= size) throw new Error("index beyond the tree");
    let fn = index;
    let sn = size - 1n;
    let r = leaf;
    for (const p of proof) {
      if (sn === 0n) throw new Error("proof too long");
      if ((fn & 1n) === 1n || fn === sn) {
        r = await nodeHash(p, r);
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    if (sn !== 0n) throw new Error("proof too short");
    return r;
  }

  // C2SP signed-note checkpoint: text (origin, size, base64 root), a blank
  // line, then "— <name> base64(key id || Ed25519 signature)" lines.
  async function openCheckpoint(note, vkey) {
    // <name>+<hex key id>+<base64 key>: the base64 may itself hold "+".
    const first = vkey.indexOf("+");
    const second = vkey.indexOf("+", first + 1);
    if (first < 0 || second < 0) throw new Error("the log key is malformed");
    const name = vkey.slice(0, first);
    const keyIdHex = vkey.slice(first + 1, second);
    const keyB64 = vkey.slice(second + 1).trim();
    const key = fromB64(keyB64);
    if (key.length !== 33 || key[0] !== 1) throw new Error("log key is not Ed25519");
    const split = note.indexOf("\n\n");
    if (split < 0) throw new Error("checkpoint is not a signed note");
    const text = note.slice(0, split + 1);
    const lines = text.split("\n");
    if (lines[0] !== name) throw new Error("checkpoint origin is not the log key's name");
    const size = BigInt(lines[1]);
    const root = fromB64(lines[2]);
    let signature = "unchecked";
    for (const line of note.slice(split + 2).split("\n")) {
      const m = /^\u2014 (\S+) (\S+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const sig = fromB64(m[2]);
      if (toHex(sig.slice(0, 4)) !== keyIdHex) continue;
      try {
        const pub = await crypto.subtle.importKey("raw", key.slice(1), { name: "Ed25519" }, false, ["verify"]);
        const ok = await crypto.subtle.verify({ name: "Ed25519" }, pub, sig.slice(4), new TextEncoder().encode(text));
        signature = ok ? "valid" : "invalid";
      } catch (e) {
        signature = "unsupported";
      }
      break;
    }
    if (signature === "unchecked") throw new Error("checkpoint carries no signature by the log key");
    return { size, root, signature, text };
  }

  async function verify(row, cell, vkey, shown) {
    cell.className = "result";
    cell.textContent = say("验证中…", "verifying…");
    try {
      const index = BigInt(row.dataset.index);
      const leaf = fromB64(row.dataset.leaf);
      const noteAnswer = await fetch("/api/v1/log/checkpoint", { cache: "no-store" });
      if (!noteAnswer.ok) throw new Error("checkpoint: HTTP " + noteAnswer.status);
      const cp = await openCheckpoint(await noteAnswer.text(), vkey);
      if (cp.signature === "invalid") throw new Error(say("检查点签名无效", "the checkpoint's signature is invalid"));
      const proofAnswer = await fetch(`/api/v1/log/proof/inclusion?index=${index}&tree_size=${cp.size}`, { cache: "no-store" });
      if (!proofAnswer.ok) throw new Error("proof: HTTP " + proofAnswer.status);
      const proof = (await proofAnswer.json()).proof.map(fromHex);
      const root = await rootFromInclusion(index, cp.size, await leafHash(leaf), proof);
      shown.textContent = cp.text.trim().split("\n").join(" · ");
      if (!equal(root, cp.root)) throw new Error(say("重算的根哈希与检查点不符", "the recomputed root differs from the checkpoint's"));
      cell.className = "result pass";
      cell.textContent =
        say("通过：包含于 ", "pass: included in the tree of ") + cp.size +
        say(" 条记录的已签名树中", " entries") +
        (cp.signature === "valid" ? say("（检查点签名有效）", " (checkpoint signature valid)")
                                  : say("（浏览器无法验证 Ed25519 签名）", " (this browser cannot check Ed25519)"));
    } catch (e) {
      cell.className = "result fail";
      cell.textContent = say("失败：", "FAIL: ") + e.message;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const vkey = document.getElementById("log-key").dataset.vkey;
    const shown = document.getElementById("checkpoint-used");
    for (const button of document.querySelectorAll("button.verify")) {
      const row = button.closest("tr");
      const cell = row.querySelector(".result");
      button.addEventListener("click", () => verify(row, cell, vkey, shown));
    }
  });
})();
