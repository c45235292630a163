#!/usr/bin/env python3
"""tests/fuzz/seeds.py TARGET DIR: write the seed inputs of fuzz target TARGET (fuzz_journal,
fuzz_live, fuzz_http, fuzz_itch, fuzz_csv; others get none) into DIR, from tests/data. Seeds
are written only if missing, so a corpus grown by earlier runs is kept."""
import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DATA = os.path.join(ROOT, "tests", "data", "itch")
ITCH_FILES = ["nasdaq-20191230-directory-1k.itch", "nasdaq-20200130-aapl-10k.itch"]


def crc32c(b):
    """CRC32C (Castagnoli), table-driven from the reflected polynomial 0x82F63B78."""
    t = crc32c.table
    if t is None:
        t = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
            t.append(c)
        crc32c.table = t
    c = 0xFFFFFFFF
    for x in b:
        c = t[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


crc32c.table = None


def frames(path, limit):
    """The whole ITCH frames of a file, up to limit bytes."""
    b = open(path, "rb").read()
    out, off = [], 0
    while off + 2 <= len(b):
        n = struct.unpack(">H", b[off:off + 2])[0]
        if n == 0 or off + 2 + n > len(b) or off + 2 + n > limit:
            break
        out.append(b[off:off + 2 + n])
        off += 2 + n
    return out


def sidecar(j, block=4096):
    h = b"TKJCRC1\n" + struct.pack("<I", block)
    s = h + struct.pack("<I", crc32c(h))
    for i in range(0, len(j), block):
        part = j[i:i + block]
        s += struct.pack("<II", len(part), crc32c(part))
    return s


def soup(ptype, payload=b""):
    return struct.pack(">H", 1 + len(payload)) + bytes([ptype]) + payload


def write(d, name, b):
    p = os.path.join(d, name)
    if not os.path.exists(p):
        with open(p, "wb") as f:
            f.write(b)


def main():
    target, d = sys.argv[1], sys.argv[2]
    os.makedirs(d, exist_ok=True)
    if target in ("fuzz_itch", "fuzz_csv"):
        for f in ITCH_FILES:
            write(d, f, open(os.path.join(DATA, f), "rb").read())
    elif target == "fuzz_journal":
        # byte 0: sidecar entries (0: none), byte 1: 0 io_uring / 1 pwrite, then the journal and
        # the sidecar (tests/fuzz/fuzz_journal.c)
        for f in ITCH_FILES:
            for limit in (3000, 9000, 20000):
                j = b"".join(frames(os.path.join(DATA, f), limit))
                s = sidecar(j)
                n = (len(s) - 16) // 8
                write(d, "%s-%d-crc" % (f, limit), bytes([n, 0]) + j + s)
                write(d, "%s-%d-old" % (f, limit), bytes([0, 1]) + j)
                write(d, "%s-%d-torn" % (f, limit), bytes([n, 1]) + j[:-5] + s)
    elif target == "fuzz_live":
        # byte 0: pieces - 1; then one publisher connection's stream (tests/fuzz/fuzz_live.c)
        login = soup(ord("L"), b"tick  " + b"core      " + b"TICKCORE  " + b"%20d" % 0)
        fs = frames(os.path.join(DATA, ITCH_FILES[1]), 4000)
        data = b"".join(soup(ord("S"), fr[2:]) for fr in fs)
        write(d, "login-data", bytes([0]) + login + data)
        write(d, "login-data-pieces", bytes([3]) + login + data + soup(ord("R")) + soup(ord("O")))
        write(d, "bad-password", bytes([0]) + soup(ord("L"), b"tick  " + b"nope      " +
                                                  b"TICKCORE  " + b"%20d" % 1))
        write(d, "data-before-login", bytes([1]) + data[:200])
    elif target == "fuzz_http":
        auth = b"\nBearer tok-en"
        for u in (b"GET /healthz", b"GET /v1/symbols", b"GET /v1/symbols/AAPL?depth=5",
                  b"GET /v1/symbols/A%20B?depth=99999999999", b"GET /v1/correlation?symbols=AAPL,MSFT",
                  b"GET /v1/correlation?symbols=A,,B&symbols=C", b"GET /v1/pca", b"GET /v1/mst",
                  b"GET /v1/clusters", b"HEAD /v1/bad", b"POST /v1/symbols"):
            write(d, u.decode().replace("/", "_").replace(" ", "-").replace("?", "Q"), u + auth)
        write(d, "no-token", b"GET /v1/symbols/AAPL")
        write(d, "wrong-token", b"GET /v1/pca\nbearer  wrong ")
        write(d, "small-buffer", b"GET /v1/symbols/AAPL?depth=3" + auth + b"~")


if __name__ == "__main__":
    main()
