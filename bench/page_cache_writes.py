#!/usr/bin/env python3
"""How fast this machine writes a new 1 GiB file, by size of each write(2).

On a VM whose balloon reports free pages to the host, writes that cover
aligned 1 MiB ranges get large page-cache folios, taken from the high-order
free blocks the host has taken back, and run several times slower than
writes of other sizes (see BENCHMARKS.md, "Downloads and the VM's memory
balloon"). This measures that without mpnet: each size writes a 1 GiB file
after a 3 s pause (so the previous file's freed pages have been reported),
then deletes it. Usage: python3 bench/page_cache_writes.py [DIR] (default /tmp).
"""
import os
import sys
import time

SIZES = [1 << 20, 1_000_000, 1 << 17, 1 << 15, 1 << 14, (1 << 20) + 1]
TOTAL = 1 << 30


def write_file(path, chunk):
    buf = b"x" * chunk
    start, cpu = time.perf_counter(), time.process_time()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        done = 0
        while done < TOTAL:
            done += os.write(fd, buf[: min(chunk, TOTAL - done)])
    finally:
        os.close(fd)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    os.unlink(path)
    return TOTAL / wall / 1e6, cpu


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
    path = os.path.join(folder, f"page-cache-writes-{os.getpid()}.bin")
    for round_ in range(2):
        for chunk in SIZES:
            time.sleep(3)
            rate, cpu = write_file(path, chunk)
            print(f"round {round_}  write size {chunk:>9} B: {rate:7.0f} MB/s, {cpu:.2f} s CPU", flush=True)


if __name__ == "__main__":
    main()
