"""The little DNS wire format the bench's Python drivers need (standard library only)."""
import socket
import struct


def encode_name(name):
    """A name in wire form (uncompressed)."""
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def skip_name(buf, off):
    """The offset just past the (possibly compressed) name at `off`."""
    while True:
        n = buf[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n


def a_records(buf):
    """The addresses of the A records in the answer section."""
    qd, an = struct.unpack("!HH", buf[4:8])
    off = 12
    for _ in range(qd):
        off = skip_name(buf, off) + 4
    out = []
    for _ in range(an):
        off = skip_name(buf, off)
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", buf[off:off + 10])
        off += 10
        if rtype == 1 and rdlen == 4:
            out.append(socket.inet_ntoa(buf[off:off + 4]))
        off += rdlen
    return out
