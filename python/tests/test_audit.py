"""A decision log verified a unit at a time (today: a segment) and joined
gives the verdict `flowgate audit verify` gives for the whole log: intact,
or the same first broken place, worded the same, for every kind of damage;
through Spark too."""

import pathlib
import shutil

import pytest

import flowgate.spark
from flowgate import _flowgate
from conftest import EXAMPLES, run_cli


def make_log(directory):
    """A log of several segments: six runs of a third of the examples each,
    with small segments and kept records, so segments close by size and
    by run (some hold receipts, some only the checkpoint of a close)."""
    run_cli("key", "new", "platform-log", "--out", directory, check_status=0)
    log = directory / "log"
    lines = EXAMPLES.read_text().splitlines(keepends=True)
    for run in range(6):
        part = directory / f"part-{run}.jsonl"
        part.write_text("".join(lines[(run % 3) * 11:(run % 3) * 11 + 11]))
        run_cli("check", "--no-progress", "--log", log, "--log-key", directory / "platform-log.key",
                "--log-records", "--log-segment-bytes", "1024", "--durability", "buffered",
                input_path=part, check_status=0)
    return log, directory / "platform-log.pub"


def receipt_segments(log):
    """The segments holding at least three receipts, in order."""
    return [path for path in sorted(log.glob("segment-*.jsonl"))
            if sum(1 for line in path.read_bytes().split(b"\n") if line.startswith(b'{"platform"')) >= 3]


def cli_verdict(log, key, *checkpoints):
    status, stdout, stderr = run_cli("audit", "verify", log, "--key", key,
                                     *(["--checkpoints", *checkpoints] if checkpoints else []))
    assert status in (0, 1), stderr
    broken = [line.removeprefix("broken: ") for line in stdout.splitlines() if line.startswith("broken: ")]
    return status, (broken[0] if broken else None), stdout


def joined(log, key, *checkpoints):
    key_text = key.read_text().strip()
    lines = [path.read_text() for path in checkpoints]
    units = _flowgate.log_units(str(log))
    parts = [_flowgate.verify_log_unit(str(log), unit, key_text, lines) for unit in reversed(units)]
    return _flowgate.join_log_units(key_text, [part["state"] for part in parts], lines)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_log(tmp_path_factory.mktemp("log"))


@pytest.fixture
def log(pristine, tmp_path):
    source, key = pristine
    copy = tmp_path / "log"
    shutil.copytree(source, copy)
    return copy, key


def segment(log, n):
    """The `n`-th segment holding receipts (0-based)."""
    return receipt_segments(log)[n]


def records_of(path):
    return path.with_name(path.name.replace("segment-", "records-"))


def edit_line(path, index, change):
    lines = path.read_bytes().split(b"\n")
    lines[index] = change(lines[index])
    path.write_bytes(b"\n".join(lines))


def test_an_intact_log_joins_to_the_cli_verdict(log):
    log, key = log
    units = _flowgate.log_units(str(log))
    assert len(units) >= 6 and len(receipt_segments(log)) >= 4, units
    status, broken, stdout = cli_verdict(log, key)
    verdict = joined(log, key)
    assert status == 0 and broken is None and verdict["intact"] and verdict["broken"] is None
    assert f"verified: {verdict['receipts']} receipts in {verdict['segments']} segments, " \
           f"{verdict['checkpoints']} checkpoints" in stdout
    assert verdict["receipts"] == 66 and verdict["records"] == 66


def delete_line(path, index):
    lines = path.read_bytes().split(b"\n")
    del lines[index]
    path.write_bytes(b"\n".join(lines))


def swap_lines(path, i, j):
    lines = path.read_bytes().split(b"\n")
    lines[i], lines[j] = lines[j], lines[i]
    path.write_bytes(b"\n".join(lines))


DAMAGE = {
    "a byte of a receipt in a middle segment": lambda log: edit_line(
        segment(log, 2), 2, lambda line: line.replace(b'"flow":"', b'"flow":"x', 1)),
    "a receipt deleted": lambda log: delete_line(segment(log, 1), 1),
    "a whole middle segment deleted": lambda log: (records_of(segment(log, 2)).unlink(missing_ok=True),
                                                   segment(log, 2).unlink()),
    "a closing checkpoint cut": lambda log: delete_line(segment(log, 1), -2),
    "the first receipt of a segment edited": lambda log: edit_line(
        segment(log, 3), 0, lambda line: line.replace(b'"flow":"', b'"flow":"y', 1)),
    "the last receipt of a segment edited": lambda log: edit_line(
        segment(log, 1), -3, lambda line: line.replace(b'"flow":"', b'"flow":"y', 1)),
    "two receipts swapped": lambda log: swap_lines(segment(log, 2), 0, 1),
    "a kept record edited": lambda log: edit_line(
        records_of(segment(log, 1)), 0, lambda line: line.replace(b'"platform":{"id":"', b'"platform":{"id":"z', 1)),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damage_is_found_where_the_cli_finds_it(log, damage):
    log, key = log
    DAMAGE[damage](log)
    status, broken, _ = cli_verdict(log, key)
    assert status == 1 and broken, damage
    verdict = joined(log, key)
    assert not verdict["intact"]
    assert verdict["broken"] == broken, damage


def test_collected_checkpoints_are_checked_across_units(log, tmp_path):
    log, key = log
    _, checkpoint, _ = run_cli("audit", "checkpoint", log, check_status=0)
    collected = tmp_path / "checkpoint.json"
    collected.write_text(checkpoint)
    assert joined(log, key, collected)["collected"] == 1
    # The log cut below what the regulator holds: its last receipts removed.
    last = receipt_segments(log)[-1]
    for path in sorted(log.glob("segment-*.jsonl")):
        if path.name >= last.name:
            path.unlink()
    status, broken, _ = cli_verdict(log, key, collected)
    assert status == 1
    assert joined(log, key, collected)["broken"] == broken


def test_a_checkpoint_signed_by_another_key_is_forged(log, tmp_path):
    log, key = log
    run_cli("key", "new", "other", "--out", tmp_path, check_status=0)
    status, broken, _ = cli_verdict(log, tmp_path / "other.pub")
    assert status == 1 and "forged checkpoint" in broken
    assert joined(log, tmp_path / "other.pub")["broken"] == broken


def test_spark_verifies_a_log_across_executors(spark, log, tmp_path):
    log, key = log
    _, checkpoint, _ = run_cli("audit", "checkpoint", log, check_status=0)
    collected = tmp_path / "checkpoint.json"
    collected.write_text(checkpoint)
    verdict = flowgate.spark.audit(spark, str(log), str(key), checkpoints=[str(collected)])
    assert verdict["intact"] and verdict["receipts"] == 66 and verdict["collected"] == 1
    DAMAGE["a byte of a receipt in a middle segment"](log)
    _, broken, _ = cli_verdict(log, key)
    verdict = flowgate.spark.audit(spark, str(log), key.read_text())
    assert not verdict["intact"] and verdict["broken"] == broken
