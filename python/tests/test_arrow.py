"""Arrow from outside is hostile: every layout Arrow has for a field's
value decides alike, and a wrong column type or a bad value is that row's
error (the field named, what was expected, the CLI's words wherever JSON
can say the same), never a failed batch or a crash."""

import decimal
import json
import math

import pyarrow as pa
import pytest

import flowgate
from conftest import EXAMPLES, batch_rows, check, write_jsonl

BASE = {"id": "a-1", "platform": {"id": "jd"}, "action": "retain", "data": {"categories": ["transaction"]},
        "purpose": "marketing", "lawful_basis": "consent", "consent": {"state": "given"}, "retention_days": 3650}


def test_flow_schema_is_the_records_fields_in_order():
    canonical = flowgate.Host().decide(BASE)  # warms nothing; the schema is static
    assert canonical["effect"] == "allow_with_obligations"
    names = [field.name for field in flowgate.FLOW_SCHEMA]
    assert names[:6] == ["id", "regime", "platform", "action", "data", "purpose"]
    assert names[-1] == "price_differentiated" and len(names) == 19
    assert flowgate.FLOW_SCHEMA.field("data").type.field("categories").type == pa.list_(pa.string())


def decided(host, record):
    """What `decide` makes of a record, as a `batch_rows` row."""
    try:
        return host.decide(record)
    except flowgate.RecordError as error:
        return {"id": record.get("id"), "error": str(error)}


def one_row(host, table):
    rows = batch_rows(host.decide_batch(table))
    assert len(rows) == 1
    return rows[0]


@pytest.mark.parametrize("layout", ["large", "view", "dictionary", "uint32", "int8", "decimal", "fixed_list"])
def test_other_layouts_decide_alike(host, layout):
    expected = host.decide(BASE)
    table = pa.Table.from_pylist([BASE], schema=flowgate.FLOW_SCHEMA).select(
        ["id", "platform", "action", "data", "purpose", "lawful_basis", "consent", "retention_days"])
    columns = {name: table.column(name) for name in table.column_names}
    if layout == "large":
        columns["purpose"] = columns["purpose"].cast(pa.large_string())
        columns["data"] = pa.chunked_array([pa.StructArray.from_arrays(
            [pa.array([["transaction"]], pa.large_list(pa.large_string()))], ["categories"])])
    elif layout == "view":
        columns["action"] = columns["action"].cast(pa.string_view())
    elif layout == "dictionary":
        columns["purpose"] = columns["purpose"].dictionary_encode()
    elif layout == "uint32":
        columns["retention_days"] = columns["retention_days"].cast(pa.uint32())
    elif layout == "int8":
        columns["retention_days"] = pa.chunked_array([pa.array([3650 % 128], pa.int8())])
        expected = host.decide({**BASE, "retention_days": 3650 % 128})
    elif layout == "decimal":
        columns["retention_days"] = pa.chunked_array([pa.array([decimal.Decimal(3650)], pa.decimal128(20, 0))])
    elif layout == "fixed_list":
        columns["data"] = pa.chunked_array([pa.StructArray.from_arrays(
            [pa.array([["transaction"]], pa.list_(pa.string(), 1))], ["categories"])])
    row = one_row(host, pa.table(columns))
    assert row == expected, layout


def cli_error(tmp_path, record):
    """The CLI's message for `record` as a JSON line."""
    _, errors = check(write_jsonl(tmp_path / "one.jsonl", [record]))
    return errors[1]


@pytest.mark.parametrize("column,array,json_value", [
    ("retention_days", pa.array(["30"]), "30"),
    ("retention_days", pa.array([30.0]), 30.0),
    ("retention_days", pa.array([True]), True),
    ("notice_given", pa.array([1], pa.int64()), 1),
    ("notice_given", pa.array(["yes"]), "yes"),
    ("action", pa.array([7], pa.int32()), 7),
    ("action", pa.array([["retain"]]), ["retain"]),
    ("platform", pa.array(["jd"]), "jd"),
    ("consent", pa.array([["given"]]), ["given"]),
    ("report_coverage", pa.array(["1"]), "1"),
    ("report_coverage", pa.array([2], pa.int64()), 2),
    ("report_coverage", pa.array([decimal.Decimal("1.50")], pa.decimal128(5, 2)), 1.5),
    ("volume", pa.array([{"subjects": -3}]), {"subjects": -3}),
    ("volume", pa.array([{"subjects": 2**64 - 1}], pa.struct([("subjects", pa.uint64())])), None),
    ("data", pa.array([{"categories": ["transaction"], "size": 3}]), {"categories": ["transaction"], "size": 3}),
    ("surprise", pa.array([1], pa.int64()), 1),
    ("destination", pa.array(["cn"]), "cn"),
])
def test_a_wrong_type_or_value_is_that_rows_error_in_the_cli_words(host, tmp_path, column, array, json_value):
    good = pa.Table.from_pylist([BASE, BASE], schema=flowgate.FLOW_SCHEMA)
    bad_column = pa.concat_arrays([pa.nulls(1, array.type), array]) if column not in good.column_names \
        else None
    if column in good.column_names:
        at = good.column_names.index(column)
        # Row 0 keeps its value where the types allow; row 1 gets the bad one.
        table = good.set_column(at, column, pa.concat_arrays([pa.nulls(1, array.type), array]))
        kept = {k: v for k, v in BASE.items() if k != column}
    else:
        table = good.append_column(column, bad_column)
        kept = dict(BASE)
    rows = batch_rows(host.decide_batch(table))
    assert rows[0] == decided(host, kept), "the other row is decided on its own"
    if json_value is None:
        # u64::MAX is a valid u64, whatever the column's type: no error at all.
        assert "error" not in rows[1], rows[1]
        return
    error = rows[1]["error"]
    assert error and column in error, error
    assert error == cli_error(tmp_path, {**kept, column: json_value})


def test_u64_volumes_beyond_int64_are_read(host):
    record = {**BASE, "volume": {"subjects": 2**64 - 1}}
    table = pa.Table.from_pylist([record], schema=pa.schema(
        [f if f.name != "volume" else pa.field("volume", pa.struct([("subjects", pa.uint64())]))
         for f in flowgate.FLOW_SCHEMA]))
    assert one_row(host, table) == host.decide(record)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_errors_not_crashes(host, value):
    table = pa.Table.from_pylist([{**BASE, "report_coverage": value}], schema=flowgate.FLOW_SCHEMA)
    error = one_row(host, table)["error"]
    assert error.startswith("`report_coverage`: invalid value: floating point"), error
    retention = pa.Table.from_pylist([BASE], schema=flowgate.FLOW_SCHEMA)
    retention = retention.set_column(retention.column_names.index("retention_days"), "retention_days",
                                     pa.array([value]))
    assert one_row(host, retention)["error"].startswith("`retention_days`: invalid type: floating point")


def test_unsupported_arrow_types_name_the_field(host):
    table = pa.Table.from_pylist([BASE], schema=flowgate.FLOW_SCHEMA)
    table = table.set_column(0, "id", pa.array([b"a-1"], pa.binary()))
    assert one_row(host, table)["error"] == "`id`: a column of Arrow type `Binary`, expected a string"
    stamped = pa.Table.from_pylist([BASE], schema=flowgate.FLOW_SCHEMA).append_column(
        "when", pa.array([0], pa.timestamp("s")))
    assert "`when`" in one_row(host, stamped)["error"]


def test_nulls_are_values_left_out(host):
    table = pa.Table.from_pylist([BASE, {**BASE, "id": None}, {**BASE, "consent": None}],
                                 schema=flowgate.FLOW_SCHEMA)
    rows = batch_rows(host.decide_batch(table))
    assert rows[0] == host.decide(BASE)
    assert rows[1] == {"id": None, "error": "missing field `id`"}
    assert rows[2] == host.decide({k: v for k, v in BASE.items() if k != "consent"})


def test_a_null_category_is_an_error_not_a_skip(host, tmp_path):
    table = pa.Table.from_pylist([{**BASE, "data": {"categories": ["transaction", None]}}],
                                 schema=flowgate.FLOW_SCHEMA)
    assert one_row(host, table)["error"] == cli_error(
        tmp_path, {**BASE, "data": {"categories": ["transaction", None]}})


def test_not_arrow_at_all_is_a_type_error(host):
    with pytest.raises(TypeError):
        host.decide_batch([BASE])
    with pytest.raises(TypeError):
        host.decide(42)
    with pytest.raises(flowgate.RecordError):
        host.decide({**BASE, "report_coverage": math.nan})
    with pytest.raises(flowgate.RecordError, match="longer than"):
        host.decide(json.dumps({**BASE, "id": "x" * (1 << 20)}))


def test_an_empty_table_gives_an_empty_table(host):
    out = host.decide_batch(pa.Table.from_pylist([], schema=flowgate.FLOW_SCHEMA))
    assert out.num_rows == 0 and out.schema == flowgate.DECISION_SCHEMA


def test_many_bad_rows_stay_linear(host):
    """Every row on the slow path, dictionary columns included: bounded time."""
    import time
    rows = [{**BASE, "id": f"b-{n}", "action": "sell"} for n in range(20_000)]
    table = pa.Table.from_pylist(rows, schema=flowgate.FLOW_SCHEMA)
    table = table.set_column(table.column_names.index("action"), "action",
                             table.column("action").dictionary_encode())
    started = time.monotonic()
    out = batch_rows(host.decide_batch(table))
    assert time.monotonic() - started < 20
    assert all(row["error"].startswith("`action`: unknown variant `sell`") for row in out)
