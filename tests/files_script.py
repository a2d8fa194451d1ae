"""The script of issue 16's proof, shared by the API, CLI and MCP tests: it writes a CSV into
/tmp and reads it back, then leaves a hand-made PNG and a text file in /output."""

import struct
import zlib

# A 2x2 PNG, red pixels, from the stdlib only (what the guest script builds too).
PNG_WIDTH = PNG_HEIGHT = 2


def png_bytes() -> bytes:
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * PNG_WIDTH for _ in range(PNG_HEIGHT))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", PNG_WIDTH, PNG_HEIGHT, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


SCRIPT = f"""
import csv, struct, zlib
with open("/tmp/table.csv", "w", newline="") as stream:
    csv.writer(stream).writerows([["city", "n"], ["Oslo", 3], ["Lima", 5]])
with open("/tmp/table.csv", newline="") as stream:
    rows = list(csv.reader(stream))
print(sum(int(n) for _, n in rows[1:]))

W = H = {PNG_WIDTH}
raw = b"".join(b"\\x00" + b"\\xff\\x00\\x00" * W for _ in range(H))
def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
png = (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
with open("/output/red.png", "wb") as stream:
    stream.write(png)
with open("/output/summary.txt", "w") as stream:
    stream.write("total 8\\n")
"""
