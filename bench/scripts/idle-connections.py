"""The memory an idle connection costs a server.

    idle-connections.py PID PORT h1|h2 N

Opens N connections to PORT; on each, one request for /13.txt is sent and
answered (over HTTP/2 by prior knowledge: the preface, SETTINGS, a HEADERS
frame whose fields are indexed, as a browser's are), then the connection is
held open and quiet. Prints the growth of PID's resident memory, per
connection, in bytes, once every connection has been answered.
"""

import socket
import sys
import time


def rss(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise SystemExit(f"no process {pid}")


def frame(kind, flags, stream, payload):
    head = len(payload).to_bytes(3, "big") + bytes([kind, flags])
    return head + stream.to_bytes(4, "big") + payload


def indexed_literal(name, value):
    """A field with incremental indexing, its name a literal (RFC 7541 6.2.1)."""
    return b"\x40" + bytes([len(name)]) + name + bytes([len(value)]) + value


def request(protocol):
    if protocol == "h1":
        return b"GET /13.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n" \
            b"User-Agent: idle-probe/1.0\r\nAccept: */*\r\n\r\n"
    fields = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"127.0.0.1"),
              (b":path", b"/13.txt"), (b"user-agent", b"idle-probe/1.0"), (b"accept", b"*/*")]
    block = b"".join(indexed_literal(n, v) for n, v in fields)
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(0x4, 0, 0, b"")
    # HEADERS with END_STREAM | END_HEADERS on stream 1.
    return preface + frame(0x1, 0x5, 1, block)


def main():
    pid, port, protocol, count = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    before = rss(pid)
    held = []
    for i in range(count):
        conn = socket.create_connection(("127.0.0.1", port))
        conn.settimeout(10)
        conn.sendall(request(protocol))
        received = b""
        while b"hello, world" not in received:
            chunk = conn.recv(65536)
            if not chunk:
                raise SystemExit(f"connection {i} closed before its answer")
            received += chunk
        if protocol == "h2":
            # The server's SETTINGS, acknowledged as a client does.
            conn.sendall(frame(0x4, 0x1, 0, b""))
        held.append(conn)
    time.sleep(1)
    print(f"{(rss(pid) - before) / count:.0f}")


main()
