"""Spark in local mode decides a Parquet file of flow records exactly as
`flowgate check` decides the same records as JSON Lines, with the
embedded reference set and with signed bundles shipped to the executors."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import flowgate
import flowgate.spark
from flowgate import _flowgate
from conftest import EXAMPLES, check, run_cli, write_jsonl
from records import generate


@pytest.fixture(scope="module")
def parquet(tmp_path_factory):
    """10,000 generated records (about 5 % invalid) as Parquet with the flow
    schema, and what the CLI made of the same records as JSON Lines."""
    directory = tmp_path_factory.mktemp("spark")
    records, broken = generate(4242, 10_000)
    decisions, errors = check(write_jsonl(directory / "flows.jsonl", records))
    path = directory / "flows.parquet"
    pq.write_table(pa.Table.from_pylist(records, schema=flowgate.FLOW_SCHEMA), path, row_group_size=2_500)
    return path, records, decisions, errors


def spark_rows(frame):
    rows = []
    for row in frame.collect():
        row = row.asDict(recursive=True)
        if row["error"] is not None:
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


def test_spark_decides_parquet_as_the_cli(spark, parquet):
    path, records, decisions, errors = parquet
    frame = spark.read.parquet(str(path))
    assert frame.rdd.getNumPartitions() >= 2 or frame.count() == len(records)
    out = flowgate.spark.decide(frame)
    assert out.columns == ["id", "effect", "obligations", "remedies", "reasons", "error"]
    rows = spark_rows(out)
    assert len(rows) == len(records)
    for n, row in enumerate(rows, 1):
        if n in errors:
            assert row["error"] == errors[n], records[n - 1]
        else:
            assert row == decisions[n], records[n - 1]
    effects = {row.get("effect") for row in rows}
    assert effects == {"allow", "allow_with_obligations", "deny", "not_applicable", None}


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    directory = tmp_path_factory.mktemp("signed")
    bundles = directory / "bundles"
    names = _flowgate._write_reference_bundles(bundles)
    run_cli("key", "new", "reg", "--out", directory / "keys", check_status=0)
    run_cli("sign", "--key", directory / "keys" / "reg.key", *[bundles / n for n in names], check_status=0)
    public = (directory / "keys" / "reg.pub").read_text().strip()
    trust = directory / "trust.toml"
    trust.write_text(f'[[key]]\nid = "reg"\npublic = "{public}"\nholder = "test"\n\n[[grant]]\npolicies = ["*"]\nkeys = ["reg"]\n')
    return bundles, trust


def test_signed_bundles_are_shipped_and_verified_on_the_executors(spark, signed):
    bundles, trust = signed
    # Spark's own JSON reader: fields sorted by name, whole numbers as long.
    frame = spark.read.json(str(EXAMPLES))
    decisions, _ = check(EXAMPLES, "--policies", bundles, "--trust", trust)
    rows = spark_rows(flowgate.spark.decide(frame, policies=str(bundles), trust=str(trust)))
    assert rows == [decisions[n] for n in sorted(decisions)]


def test_a_tampered_bundle_fails_on_the_driver_and_on_an_executor(spark, signed, tmp_path):
    bundles, trust = signed
    shipment = flowgate.spark._ship(str(bundles), str(trust), False, None)
    # What an executor receives, altered on the way: refused there too, naming the bundle.
    altered = dict(shipment, bundles={**shipment["bundles"]})
    wasm = bytearray(altered["bundles"]["regulator-jv"]["policy.wasm"])
    wasm[100] ^= 0xFF
    altered["bundles"]["regulator-jv"] = {**altered["bundles"]["regulator-jv"], "policy.wasm": bytes(wasm)}
    with pytest.raises(flowgate.Error, match="regulator-jv"):
        flowgate.spark._build(altered)
    # On the driver: the CLI's message before any task runs.
    (bundles / "regulator-jv" / "policy.wasm").write_bytes(bytes(wasm))
    frame = spark.createDataFrame([("x",)], ["id"])
    with pytest.raises(flowgate.Error) as refused:
        flowgate.spark.decide(frame, policies=str(bundles), trust=str(trust))
    status, _, stderr = run_cli("check", "--policies", bundles, "--trust", trust, input_path=EXAMPLES)
    assert status == 2 and str(refused.value) == stderr.strip().removeprefix("error: ")
    assert "regulator-jv" in str(refused.value)
