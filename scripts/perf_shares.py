#!/usr/bin/env python3
"""Where a benchmark row's time goes, by kind of work, from a perf recording.

Release builds have no frame pointers, so call chains stop short: each
sample is put in a bucket by its innermost function only. A criterion run
with `--profile-time` also spends seconds on set-up (compiling policies,
building the Rego and Cedar peers) before and after the row, so first
print the per-second histogram, pick the seconds where the row runs, then
ask for the shares of that window:

    perf record -o row.data -F 999 -g <bench binary> --bench --profile-time 6 '^per_record/flowgate_batch_256$'
    python3 scripts/perf_shares.py row.data          # seconds since the first sample, top buckets of each
    python3 scripts/perf_shares.py row.data 2 9      # shares of the samples from second 2 up to 9

Used for the profile tables in BENCHMARKS.md.
"""
import re
import subprocess
import sys

# First match wins; matched against the function name only (never the
# binary's file name, which could contain any of these words).
BUCKETS = [
    ("guest code", r"^\[unknown\]$|^0x[0-9a-f]+$"),
    ("set-up (compile, Rego, Cedar)", r"regalloc2|cranelift|wasmparser|sha2|shape::check|wasmtime_environ|regorus|cedar"),
    ("allocator", r"malloc|_int_free|cfree|realloc|unlink_chunk|consolidate|drop_in_place|as core::ops::drop::Drop|__rust_dealloc|__rust_alloc"),
    ("memcmp", r"memcmp"),
    ("copies", r"memmove|memcpy|extend_desugared|memset|clone"),
    ("writing records into guests", r"write_batch|encode_record|copy_declared"),
    ("reading answers", r"read_answer|answer_batch|answer_known"),
    ("instance slots, rechecks", r"Kept::|Rechecks|isolation::|recheck"),
    ("the call into wasmtime (traps, epoch, clock)", r"wasmtime|clock_gettime|catch_traps|Timespec|arc_swap"),
    ("combining", r"combine|ObligationSet|RemedySet|sort|Decision"),
    ("the host's loop", r"flowgate::"),
]


def samples(path):
    """(seconds, bucket, function) of every sample, in time order."""
    text = subprocess.run(
        ["perf", "script", "-i", path, "-F", "time,ip,sym,dso"], capture_output=True, text=True, check=True
    ).stdout
    out = []
    for block in text.split("\n\n"):
        lines = [line.strip() for line in block.strip().splitlines()]
        if len(lines) < 2:
            continue
        seconds = float(lines[0].rstrip(":").split()[-1])
        # "<address> <function> (<binary>)"
        frame = re.match(r"\S+\s+(.*?)\s+\(([^)]*)\)$", lines[1])
        function, binary = (frame.group(1), frame.group(2)) if frame else (lines[1], "")
        if binary == "[kernel.kallsyms]":
            bucket = "kernel"
        elif binary.startswith("[JIT]") or binary == "[unknown]":
            bucket = "guest code"
        else:
            bucket = next((name for name, pattern in BUCKETS if re.search(pattern, function)), "other")
        out.append((seconds, bucket, function))
    return out


def main():
    found = samples(sys.argv[1])
    if not found:
        raise SystemExit("no samples")
    start = found[0][0]
    if len(sys.argv) < 4:
        seconds = {}
        for at, bucket, _ in found:
            counts = seconds.setdefault(int(at - start), {})
            counts[bucket] = counts.get(bucket, 0) + 1
        for second, counts in sorted(seconds.items()):
            top = sorted(counts.items(), key=lambda kv: -kv[1])[:3]
            print(second, sum(counts.values()), top)
        return
    low, high = float(sys.argv[2]), float(sys.argv[3])
    window = [(bucket, function) for at, bucket, function in found if low <= at - start < high]
    shares, others = {}, {}
    for bucket, function in window:
        shares[bucket] = shares.get(bucket, 0) + 1
        if bucket in ("other", "the host's loop"):
            others[function] = others.get(function, 0) + 1
    print(f"{len(window)} samples")
    for bucket, count in sorted(shares.items(), key=lambda kv: -kv[1]):
        print(f"{100 * count / len(window):5.1f} %  {bucket}")
    print("most frequent in 'other' and the host's loop:")
    for function, count in sorted(others.items(), key=lambda kv: -kv[1])[:6]:
        print(f"  {count:6}  {function}")


if __name__ == "__main__":
    main()
