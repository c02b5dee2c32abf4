"""A decision log verified a unit at a time (a chunk of 65,536 entries, a
perfect subtree of the log's Merkle tree) and joined gives the verdict
`flowgate audit verify` gives for the whole log: intact, or the same
gravest problem, worded the same, for every kind of damage; through Spark
too."""

import shutil
import struct

import pytest

import flowgate.spark
from flowgate import _flowgate
from conftest import run_cli, write_jsonl
from records import generate

# Three units: two full chunks and a ragged one.
RECORDS = 140_000
CHUNK = 65_536


def make_log(directory):
    """A log of three units, with kept records: one run of `flowgate check`."""
    run_cli("key", "new", "platform-log", "--out", directory, check_status=0)
    log = directory / "log"
    flows = write_jsonl(directory / "flows.jsonl", generate(7, RECORDS, invalid_share=0)[0])
    run_cli("check", "--no-progress", "--log", log, "--log-key", directory / "platform-log.key",
            "--log-records", "--durability", "buffered", input_path=flows, check_status=0)
    return log, directory / "platform-log.pub"


def cli_verdict(log, key, *checkpoints):
    status, stdout, stderr = run_cli("audit", "verify", log, "--key", key,
                                     *(["--checkpoints", *checkpoints] if checkpoints else []))
    assert status in (0, 1), stderr
    broken = [line.removeprefix("broken: ") for line in stdout.splitlines() if line.startswith("broken: ")]
    return status, (broken[0] if broken else None), stdout


def joined(log, key, *checkpoints):
    key_text = key.read_text().strip()
    texts = [path.read_text() for path in checkpoints]
    units = _flowgate.log_units(str(log))
    parts = [_flowgate.verify_log_unit(str(log), unit, key_text, texts) for unit in reversed(units)]
    return _flowgate.join_log_units(key_text, [part["state"] for part in parts], texts)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_log(tmp_path_factory.mktemp("log"))


@pytest.fixture
def log(pristine, tmp_path):
    source, key = pristine
    copy = tmp_path / "log"
    shutil.copytree(source, copy)
    return copy, key


def entry_offset(log, index):
    """The byte offset of entry `index` (a multiple of 256) in `entries`."""
    assert index % 256 == 0
    with open(log / "entries.idx", "rb") as file:
        file.seek(index // 256 * 8)
        return struct.unpack(">Q", file.read(8))[0]


def flip(path, offset, bit=0x40):
    data = bytearray(path.read_bytes())
    data[offset] ^= bit
    path.write_bytes(bytes(data))


def edit_first_record(path):
    lines = path.read_bytes().split(b"\n")
    lines[0] = lines[0].replace(b'"platform":{"id":"', b'"platform":{"id":"z', 1)
    path.write_bytes(b"\n".join(lines))


def test_an_intact_log_joins_to_the_cli_verdict(log):
    log, key = log
    units = _flowgate.log_units(str(log))
    assert units == ["0", "1", "2"]
    status, broken, stdout = cli_verdict(log, key)
    verdict = joined(log, key)
    assert status == 0 and broken is None and verdict["intact"] and verdict["broken"] is None
    assert f"verified: {verdict['entries']} entries ({verdict['receipts']} receipts, " \
           f"{verdict['policy_sets']} policy sets)" in stdout
    assert f"tree root {verdict['root']}" in stdout
    assert verdict["receipts"] == RECORDS and verdict["records"] == RECORDS and verdict["units"] == 3


DAMAGE = {
    "a byte of an entry in the second unit": lambda log: flip(log / "entries", entry_offset(log, 99_840) + 5),
    "a byte of an entry in the first unit": lambda log: flip(log / "entries", entry_offset(log, 256) + 5),
    "a stored leaf hash": lambda log: flip(log / "tree" / "level-00", 32 * 70_000 + 3),
    "the index's offset of the third unit": lambda log: flip(log / "entries.idx", 2 * CHUNK // 256 * 8 + 7, 1),
    "a kept record in the second unit": lambda log: edit_first_record(log / "records" / "records-1"),
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


def test_a_unit_alone_names_its_own_damage(log):
    log, key = log
    DAMAGE["a byte of an entry in the second unit"](log)
    key_text = key.read_text().strip()
    assert _flowgate.verify_log_unit(str(log), "0", key_text)["broken"] is None
    assert ": edited: " in _flowgate.verify_log_unit(str(log), "1", key_text)["broken"]
    assert _flowgate.verify_log_unit(str(log), "2", key_text)["broken"] is None


def test_collected_checkpoints_are_checked_across_units(log, tmp_path):
    log, key = log
    _, checkpoint, _ = run_cli("audit", "checkpoint", log, "--key", key, check_status=0)
    collected = tmp_path / "checkpoint"
    collected.write_text(checkpoint)
    assert joined(log, key, collected)["collected"] == 1
    # The log cut below what the regulator holds: its newest entries gone,
    # and a checkpoint of what is left put in place of its own.
    offset = entry_offset(log, 2 * CHUNK)
    with open(log / "entries", "r+b") as file:
        file.truncate(offset)
    status, broken, _ = cli_verdict(log, key, collected)
    assert status == 1 and broken
    assert joined(log, key, collected)["broken"] == broken


def test_a_checkpoint_signed_by_another_key_is_named(log, tmp_path):
    log, key = log
    run_cli("key", "new", "other", "--out", tmp_path, check_status=0)
    status, broken, _ = cli_verdict(log, tmp_path / "other.pub")
    assert status == 1 and "wrong key" in broken
    assert joined(log, tmp_path / "other.pub")["broken"] == broken


def test_states_of_another_log_or_garbage_are_refused(log, pristine):
    log, key = log
    key_text = key.read_text().strip()
    ours = _flowgate.verify_log_unit(str(log), "0", key_text)["state"]
    theirs = _flowgate.verify_log_unit(str(pristine[0]), "1", key_text)["state"]
    with pytest.raises(ValueError, match="two logs"):
        _flowgate.join_log_units(key_text, [ours, theirs])
    with pytest.raises(ValueError, match="not the state"):
        _flowgate.join_log_units(key_text, ['{"dir": "x", "unit": {}}'])
    with pytest.raises(ValueError, match="not a unit"):
        _flowgate.verify_log_unit(str(log), "first", key_text)


def test_spark_verifies_a_log_across_executors(spark, log, tmp_path):
    log, key = log
    _, checkpoint, _ = run_cli("audit", "checkpoint", log, "--key", key, check_status=0)
    collected = tmp_path / "checkpoint"
    collected.write_text(checkpoint)
    verdict = flowgate.spark.audit(spark, str(log), str(key), checkpoints=[str(collected)])
    assert verdict["intact"] and verdict["receipts"] == RECORDS and verdict["collected"] == 1
    DAMAGE["a byte of an entry in the second unit"](log)
    _, broken, _ = cli_verdict(log, key)
    verdict = flowgate.spark.audit(spark, str(log), key.read_text())
    assert not verdict["intact"] and verdict["broken"] == broken
