"""The Python package's figures for BENCHMARKS.md, each a ratio measured in
one run on one machine (run from the repository root, after `pip install
./python pyspark pandas` and a release build of the CLI):

    python python/bench/bench.py [--records 1000000] [--batch-records 200000]

1. `decide_batch` on an Arrow table against the Rust library alone
   (`flowgate::Host::evaluate_batch` on the same records, read into
   `FlowRecord`s beforehand, in the same parts on the same threads), on 1
   and on 2 threads. Target: at least 0.8.
2. Spark `local[2]` deciding a Parquet file of N records (written to the
   `noop` sink, so every decision is made and none collected) against
   `flowgate check` on the same records as JSON Lines (to /dev/null).
   Target: at least 0.5.
3. `decide` on one dict at a time, beside `decide_batch`.

Each timing is the best of `--repeat` runs (default 3) after a warm-up.
"""

import argparse
import gc
import os
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import flowgate  # noqa: E402
from records import generate  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]


def best(repeat, run):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch-records", type=int, default=200_000)
    parser.add_argument("--dict-records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cli", default=str(REPO / "target" / "release" / "flowgate"))
    args = parser.parse_args()

    host = flowgate.Host()
    print(f"generating {args.records} records", file=sys.stderr)
    records, _ = generate(2026, args.records, invalid_share=0.0)
    work = pathlib.Path(tempfile.mkdtemp(prefix="flowgate-bench-"))

    # 1. decide_batch against the library, same records, same threads,
    # measured alternately (the machine is shared: both see the same load),
    # with Python's cyclic GC off (a million dicts alive would tax only the
    # Python side).
    table = pa.Table.from_pylist(records[: args.batch_records], schema=flowgate.FLOW_SCHEMA)
    host.decide_batch(table.slice(0, 10_000))
    gc.disable()
    rows = []
    for threads in (1, 2):
        arrow, library = [], []
        for _ in range(args.repeat):
            arrow.append(best(1, lambda: host.decide_batch(table, threads=threads)))
            library.append(host._library_seconds(table, threads=threads)[0])
        n = table.num_rows
        rows.append((f"`decide_batch`, {threads} thread{'s' * (threads > 1)}", n / min(arrow), n / min(library),
                     min(library) / min(arrow)))
    stages = [min(column) for column in zip(*(host._stages(table) for _ in range(args.repeat)))]
    gc.enable()
    print("| path | records/s | library records/s | ratio (target ≥ 0.8) |")
    print("|---|---|---|---|")
    for name, rate, library_rate, ratio in rows:
        print(f"| {name} | {rate:,.0f} | {library_rate:,.0f} | {ratio:.2f} |")
    print()
    print("| `decide_batch` stage, 1 thread | µs per record | share |")
    print("|---|---|---|")
    for name, seconds in zip(["validate the Arrow data", "read rows into records", "decide (the library's work)",
                              "write decisions to Arrow"], stages):
        print(f"| {name} | {seconds / table.num_rows * 1e6:.2f} | {seconds / sum(stages):.0%} |")

    # 3. decide, one dict at a time.
    sample = records[: args.dict_records]
    one = best(args.repeat, lambda: [host.decide(record) for record in sample])
    batch_one = best(args.repeat, lambda: host.decide_batch(table.slice(0, len(sample)), threads=1))
    print()
    print("| path | records/s | ratio to `decide_batch`, 1 thread |")
    print("|---|---|---|")
    print(f"| `decide(dict)` | {len(sample) / one:,.0f} | {batch_one / one:.3f} |")

    # 2. Spark local[2] on Parquet against the CLI on JSON Lines.
    jsonl = work / "flows.jsonl"
    parquet = work / "flows.parquet"
    with open(jsonl, "w") as out:
        import json
        for record in records:
            out.write(json.dumps(record) + "\n")
    pq.write_table(pa.Table.from_pylist(records, schema=flowgate.FLOW_SCHEMA), parquet, row_group_size=131_072)
    del records, table

    def cli():
        with open(os.devnull, "w") as devnull:
            subprocess.run([args.cli, "check", "--no-progress", str(jsonl)], stdout=devnull,
                           stderr=subprocess.DEVNULL, check=True)

    cli_seconds = best(args.repeat, cli)

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    from flowgate import spark as flowgate_spark

    spark = (SparkSession.builder.master("local[2]").appName("flowgate-bench")
             .config("spark.ui.enabled", "false").config("spark.driver.memory", "2g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")

    def on_spark():
        frame = spark.read.parquet(str(parquet))
        flowgate_spark.decide(frame).write.format("noop").mode("overwrite").save()

    first = best(1, on_spark)  # the first job: workers started, policies loaded in each
    spark_seconds = best(args.repeat, on_spark)
    spark.stop()
    n = args.records
    print()
    print("| path | wall time | records/s | ratio (target ≥ 0.5) |")
    print("|---|---|---|---|")
    print(f"| `flowgate check`, JSON Lines | {cli_seconds:.2f} s | {n / cli_seconds:,.0f} | 1.00 |")
    print(f"| Spark `local[2]`, Parquet, first job | {first:.2f} s | {n / first:,.0f} | "
          f"{cli_seconds / first:.2f} |")
    print(f"| Spark `local[2]`, Parquet, workers reused | {spark_seconds:.2f} s | {n / spark_seconds:,.0f} | "
          f"{cli_seconds / spark_seconds:.2f} |")


if __name__ == "__main__":
    main()
