"""The package decides exactly as `flowgate check`: on examples/flows.jsonl
and on 10,000 generated records, through `decide` (dicts and JSON text) and
`decide_batch` (Arrow), invalid records included."""

import collections
import json
import threading

import pyarrow as pa
import pyarrow.json
import pytest

import flowgate
from conftest import EXAMPLES, batch_rows, check, write_jsonl
from records import generate

GENERATED = 10_000


def test_decide_equals_check_on_the_examples(host):
    decisions, errors = check(EXAMPLES)
    assert not errors and len(decisions) == 33
    lines = EXAMPLES.read_text(encoding="utf-8").splitlines()
    for number, expected in decisions.items():
        line = lines[number - 1]
        assert host.decide(json.loads(line)) == expected, line
        assert host.decide(line) == expected, line
        assert host.decide(line.encode()) == expected, line


def test_decide_batch_equals_check_on_the_examples_read_by_pyarrow(host):
    decisions, _ = check(EXAMPLES)
    table = pyarrow.json.read_json(EXAMPLES)
    out = host.decide_batch(table)
    assert out.schema == flowgate.DECISION_SCHEMA
    assert batch_rows(out) == [decisions[n] for n in sorted(decisions)]
    # A record batch, not a table, and one thread or many: the same rows.
    assert batch_rows(host.decide_batch(table.to_batches()[0], threads=1)) == batch_rows(out)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """10,000 records, about 5 % invalid, and what the CLI made of them."""
    records, broken = generate(2026, GENERATED)
    path = write_jsonl(tmp_path_factory.mktemp("generated") / "flows.jsonl", records)
    decisions, errors = check(path)
    return records, broken, decisions, errors


def test_the_generated_records_reach_every_outcome(generated):
    records, broken, decisions, errors = generated
    effects = collections.Counter(d["effect"] for d in decisions.values())
    obligations = collections.Counter(o["kind"] for d in decisions.values() for o in d["obligations"])
    remedies = collections.Counter(r for d in decisions.values() for r in d["remedies"])
    rules = {(r["policy"], r["rule"]) for d in decisions.values() for r in d["reasons"]}
    print(f"effects {dict(effects)}; obligations {dict(obligations)}; remedies {dict(remedies)}; "
          f"{len(rules)} rules; {len(errors)} invalid")
    assert set(effects) == {"allow", "allow_with_obligations", "deny", "not_applicable"}
    assert min(effects.values()) >= 20, effects
    assert len(obligations) >= 6, obligations
    assert len(remedies) >= 8, remedies
    assert len(rules) >= 30, rules
    # Every fault the generator made is an invalid line for the CLI, naming its field.
    assert set(errors) == {n + 1 for n in broken}
    for n, field in broken.items():
        last = field.rsplit(".", 1)[-1]
        assert f"`{field}" in errors[n + 1] or f"missing field `{last}`" in errors[n + 1], (field, errors[n + 1])
    assert len(errors) >= 300


def test_decide_equals_check_on_generated_records(host, generated):
    records, _, decisions, errors = generated
    for n, record in enumerate(records, 1):
        if n in errors:
            with pytest.raises(flowgate.RecordError) as raised:
                host.decide(record)
            assert str(raised.value) == errors[n]
            assert isinstance(raised.value, ValueError)
        else:
            assert host.decide(record) == decisions[n], record


def test_decide_batch_equals_check_on_generated_records(host, generated):
    records, _, decisions, errors = generated
    table = pa.Table.from_pylist(records, schema=flowgate.FLOW_SCHEMA)
    rows = batch_rows(host.decide_batch(table))
    assert len(rows) == len(records)
    for n, row in enumerate(rows, 1):
        if n in errors:
            assert row["error"] == errors[n], records[n - 1]
            assert row["id"] == (records[n - 1].get("id") if isinstance(records[n - 1].get("id"), str) else None)
        else:
            assert row == decisions[n], records[n - 1]
    # Many small batches and one thread decide alike.
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=777))
    assert batch_rows(host.decide_batch(chunked, threads=1)) == rows


def test_one_host_from_many_threads(host, generated):
    records, _, decisions, errors = generated
    table = pa.Table.from_pylist(records[:4000], schema=flowgate.FLOW_SCHEMA)
    expected = host.decide_batch(table)
    singles = [(record, decisions[n]) for n, record in enumerate(records[:400], 1) if n not in errors]
    results = [None] * 4

    def work(i):
        if i % 2:
            results[i] = host.decide_batch(table, threads=1).equals(expected)
        else:
            results[i] = all(host.decide(record) == decision for record, decision in singles)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 4


def test_the_gil_is_released_while_deciding(host, generated):
    """Another Python thread keeps running while a large batch is decided:
    with the GIL held it would stop for the whole decision (the longest
    pause it sees would be most of the call)."""
    import time

    records, *_ = generated
    table = pa.Table.from_pylist(records, schema=flowgate.FLOW_SCHEMA)
    table = pa.concat_tables([table] * 20)
    stamps = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            stamps.append(time.perf_counter())
            time.sleep(0.001)

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        time.sleep(0.05)
        started = time.perf_counter()
        host.decide_batch(table, threads=1)
        ended = time.perf_counter()
    finally:
        stop.set()
        ticker.join()
    during = [t for t in stamps if started <= t <= ended]
    pauses = [b - a for a, b in zip([started, *during], [*during, ended])]
    assert ended - started > 0.2, "the batch must take long enough to tell"
    assert max(pauses) < 0.5 * (ended - started), (max(pauses), ended - started, len(during))
