#!/usr/bin/env python3
"""The disk as fsync-heavy systems see it: p50 of fdatasync after writing 4 KiB (200 times) and
1 MiB (50 times) to a file in DIR. Prints {"disk": {...}} as one JSON line.

    python3 scripts/disk-probe.py DIR
"""
import json
import os
import sys
import time


def probe(directory, size, n):
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    buf = b"x" * size
    times = []
    for _ in range(n):
        os.write(fd, buf)
        t = time.perf_counter()
        os.fdatasync(fd)
        times.append((time.perf_counter() - t) * 1000)
    os.close(fd)
    os.unlink(path)
    times.sort()
    return round(times[len(times) // 2], 3)


d = sys.argv[1]
print(json.dumps({"disk": {"fdatasync_4k_p50_ms": probe(d, 4096, 200),
                           "fdatasync_1m_p50_ms": probe(d, 1 << 20, 50)}}))
