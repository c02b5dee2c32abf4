"""What every test compares against: the `flowgate` CLI built by the
workspace (`cargo test --release --workspace` builds `target/release/flowgate`;
`FLOWGATE_CLI` names another), run on the same records as JSON Lines."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

REPO = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "flows.jsonl"


def cli_path():
    path = pathlib.Path(os.environ.get("FLOWGATE_CLI", REPO / "target" / "release" / "flowgate"))
    if not path.is_file():
        pytest.fail(f"no flowgate CLI at {path}: run `cargo test --release --workspace` first, or set FLOWGATE_CLI")
    return path


def run_cli(*args, input_path=None, check_status=None):
    """Runs the CLI; returns (status, stdout, stderr)."""
    command = [str(cli_path()), *map(str, args)]
    if input_path is not None:
        command.append(str(input_path))
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if check_status is not None:
        assert done.returncode == check_status, done.stderr
    return done.returncode, done.stdout, done.stderr


def check(path, *options):
    """`flowgate check OPTIONS PATH`: the decisions by line number (1-based)
    and the errors of invalid lines by line number."""
    status, stdout, stderr = run_cli("check", "--no-progress", *options, input_path=path)
    assert status in (0, 1), stderr
    errors = {}
    for line in stderr.splitlines():
        if line.startswith("line "):
            number, _, reason = line[len("line "):].partition(": ")
            errors[int(number)] = reason
    decisions = [json.loads(line) for line in stdout.splitlines()]
    lines = [n for n, text in enumerate(open(path, encoding="utf-8").read().split("\n"), 1) if text.strip()]
    valid = [n for n in lines if n not in errors]
    assert len(valid) == len(decisions), (len(valid), len(decisions), stderr[-2000:])
    return dict(zip(valid, decisions)), errors


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record) + "\n")
    return path


def batch_rows(table):
    """`decide_batch`'s table as one dict per row: a decision as the CLI's
    JSON (an obligation's absent parameter left out, an undeclared outcome
    left out), or {"error": ...}."""
    rows = []
    for row in table.to_pylist():
        if row["error"] is not None:
            assert row["effect"] is None and row["reasons"] is None, row
            rows.append({"id": row["id"], "error": row["error"]})
            continue
        rows.append({
            "id": row["id"],
            "effect": row["effect"],
            "obligations": [{k: v for k, v in o.items() if v is not None} for o in row["obligations"]],
            "remedies": row["remedies"],
            "reasons": [{k: v for k, v in r.items() if v is not None} for r in row["reasons"]],
        })
    return rows


@pytest.fixture(scope="session")
def host():
    import flowgate

    return flowgate.Host()


@pytest.fixture(scope="session")
def spark():
    """Spark in local mode on two cores, as CI runs it: no network, a small heap."""
    from pyspark.sql import SparkSession

    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    # The workers run this interpreter, where flowgate is installed.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("flowgate-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
