#!/usr/bin/env python3
"""tests/pcap_write.py ITCH OUT [--ng] [--drop N]... [--dup N]...: wrap an ITCH 5.0 BinaryFILE in
MoldUDP64 packets (session TEST000001, sequence numbers from 1, messages packed while the UDP
payload stays within 1400 bytes) over Ethernet/IPv4/UDP (127.0.0.1:7002), and write them as a
classic pcap (microseconds) or, with --ng, a pcapng file. An ARP packet comes first and a
heartbeat last (both must be skipped). --drop N leaves MoldUDP64 packet N (1-based) out; --dup N
sends packet N twice, the copy right after it. Prints "packets P messages M" and, per dropped
packet, "dropped N seq FIRST-LAST". Framing written from the MoldUDP64 1.00 spec, RFC 791/768
and the pcap/pcapng formats; nothing of tickcore is used."""
import struct
import sys

SESSION = b"TEST000001"


def frames(itch):
    data = open(itch, "rb").read()
    pos = 0
    while pos + 2 <= len(data):
        n = struct.unpack_from(">H", data, pos)[0]
        yield data[pos + 2: pos + 2 + n]
        pos += 2 + n


def mold_packets(itch):
    seq, msgs, size = 1, [], 20
    for m in frames(itch):
        if size + 2 + len(m) > 1400:
            yield seq, msgs
            seq += len(msgs)
            msgs, size = [], 20
        msgs.append(m)
        size += 2 + len(m)
    if msgs:
        yield seq, msgs
        seq += len(msgs)
    yield seq, []  # heartbeat: the next sequence number


def mold(seq, msgs):
    return SESSION + struct.pack(">QH", seq, len(msgs)) + b"".join(struct.pack(">H", len(m)) + m for m in msgs)


def checksum(b):
    s = sum(struct.unpack(">%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def udp_frame(payload):
    udp = struct.pack(">HHHH", 40000, 7002, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    ip = ip[:10] + struct.pack(">H", checksum(ip)) + ip[12:]
    return b"\x00" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + udp


def arp_frame():
    return b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x06" + bytes(28)


def main():
    itch, out = sys.argv[1], sys.argv[2]
    ng = "--ng" in sys.argv
    drop = {int(sys.argv[i + 1]) for i, a in enumerate(sys.argv) if a == "--drop"}
    dup = {int(sys.argv[i + 1]) for i, a in enumerate(sys.argv) if a == "--dup"}
    pkts = [arp_frame()]
    nmsg = 0
    for i, (seq, msgs) in enumerate(mold_packets(itch), 1):
        nmsg += len(msgs)
        if i in drop:
            print("dropped %d seq %d-%d" % (i, seq, seq + len(msgs) - 1))
            continue
        pkts.append(udp_frame(mold(seq, msgs)))
        if i in dup:
            pkts.append(pkts[-1])
    with open(out, "wb") as f:
        if ng:
            opts = b""
            shb_body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + opts
            f.write(struct.pack("<II", 0x0A0D0D0A, 12 + len(shb_body)) + shb_body + struct.pack("<I", 12 + len(shb_body)))
            idb_body = struct.pack("<HHI", 1, 0, 65535)
            f.write(struct.pack("<II", 1, 12 + len(idb_body)) + idb_body + struct.pack("<I", 12 + len(idb_body)))
            for i, p in enumerate(pkts):
                ts = 1580000000 * 1000000 + i
                pad = p + b"\x00" * (-len(p) % 4)
                body = struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(p), len(p)) + pad
                f.write(struct.pack("<II", 6, 12 + len(body)) + body + struct.pack("<I", 12 + len(body)))
        else:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for i, p in enumerate(pkts):
                f.write(struct.pack("<IIII", 1580000000, i, len(p), len(p)) + p)
    print("packets %d messages %d" % (len(pkts), nmsg))


main()
