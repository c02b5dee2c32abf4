"""Flowgate on Spark: decisions for DataFrames of flow records, and decision
logs verified across executors.

``decide(df)`` runs ``Host.decide_batch`` on every partition through
``mapInArrow``: Spark hands each Python worker Arrow batches, the host
reads them without a Python object per row, and the decisions go back as
Arrow. A DataFrame read from Parquet with ``flowgate.FLOW_SCHEMA`` (or from
JSON Lines by Spark) is read as is.

Where the policies come from (decided here, since the issue is silent):

- ``policies=None``: the reference set embedded in the package, on every
  executor; nothing is shipped.
- ``policies=DIR``: the driver first loads and verifies the bundles itself
  (``trust=FILE`` or ``allow_unsigned=True``, as ``flowgate check``), so a
  refusal fails the job at once, with the CLI's message. It then ships the
  bundles' files and the trust file to the executors as bytes, in a
  broadcast variable; each Python worker writes them to a private temporary
  directory and loads them through the same verification again (its own
  clock for key expiry included). The directory is removed once loaded.
- One ``Host`` per Python worker, kept in this module for as long as the
  worker lives (Spark reuses workers across tasks by default), keyed by the
  digest of what was shipped: partitions after the first pay nothing for
  loading.

Each task decides its batches on ``spark.task.cpus`` threads (default 1):
Spark already runs one task per core.

``audit(spark, log, key)`` verifies a decision log one unit at a time on
the executors (a unit is a chunk of 65,536 entries, a perfect subtree of
the log's Merkle tree, see ``docs/receipts.md``) and joins the small
results on the driver into the verdict ``flowgate audit verify`` gives.
The log directory must be readable at the same path on every executor and
on the driver (a shared or mounted file system; any path in local mode):
the driver reads the checkpoints and the few hashes stored above a unit.
"""

import hashlib
import os
import shutil
import tempfile

from . import _flowgate
from ._flowgate import Error, Host

#: The DataFrame ``decide`` returns, in Spark's DDL.
DECISION_DDL = (
    "id string, effect string, "
    "obligations array<struct<kind:string,k:bigint,days:bigint>>, "
    "remedies array<string>, "
    "reasons array<struct<policy:string,version:string,rule:string,outcome:string,article:string,message:string>>, "
    "error string"
)

# The bundle files shipped, and the most bytes read of each (the host's own
# caps apply again on the executors).
_BUNDLE_FILES = ("manifest.toml", "policy.wasm", "signatures.toml")
_MAX_FILE_BYTES = 64 << 20
_MAX_TRUST_BYTES = 1 << 20

# Hosts of this Python worker, by the digest of what was shipped.
_hosts = {}


def decide(df, policies=None, trust=None, allow_unsigned=False, isolation=None):
    """The decisions of every row of ``df`` (columns: the flow record's
    fields, as ``flowgate.FLOW_SCHEMA``), a DataFrame of ``DECISION_DDL``:
    ``id``, ``effect``, ``obligations``, ``remedies``, ``reasons`` and
    ``error`` (null, or the field-level message of a row that is not a
    valid record). Options as ``flowgate.Host``; a refusal raises
    ``flowgate.Error`` on the driver with the CLI's message.

    >>> decisions = flowgate.spark.decide(spark.read.parquet("flows.parquet"))
    >>> decisions.groupBy("effect").count().show()
    """
    shipment = _ship(policies, trust, allow_unsigned, isolation)
    spark = df.sparkSession
    shipped = spark.sparkContext.broadcast(shipment)
    threads = int(spark.sparkContext.getConf().get("spark.task.cpus", "1"))

    def decide_partition(batches):
        host = _host(shipped.value)
        for batch in batches:
            yield from host.decide_batch(batch, threads=threads).to_batches()

    return df.mapInArrow(decide_partition, DECISION_DDL)


def audit(spark, log, key, checkpoints=()):
    """Verifies the decision log in directory ``log`` against the log key
    (``key``: the path of ``ID.pub``, or its text) and collected checkpoint
    files, one unit per Spark task, and returns the verdict as a dict:
    ``intact``, ``broken`` (the gravest problem, worded as ``flowgate audit
    verify`` words it, or None), ``breaks`` (the first problems),
    ``entries``, ``receipts``, ``policy_sets``, ``units``, ``root`` (the
    tree's root, base64), ``checkpoint`` (the size the newest signs),
    ``history``, ``collected``, ``records``, ``erased``, ``unsigned``,
    ``open``, ``notes``.
    """
    key_text = _key_text(key)
    # Whole files: how a checkpoint is written is the log format's business.
    collected = []
    for path in checkpoints:
        with open(path, encoding="utf-8") as file:
            collected.append(file.read(_MAX_TRUST_BYTES))
    log = os.path.abspath(log)
    units = _flowgate.log_units(log)
    if units:
        rdd = spark.sparkContext.parallelize(units, numSlices=len(units))
        results = rdd.map(lambda unit: _flowgate.verify_log_unit(log, unit, key_text, collected)).collect()
    else:
        results = []
    return _flowgate.join_log_units(key_text, [result["state"] for result in results], collected)


def _key_text(key):
    text = str(key)
    if text.strip().startswith("ed25519:"):
        return text.strip()
    with open(key, encoding="utf-8") as file:
        return file.read(256).strip()


def _ship(policies, trust, allow_unsigned, isolation):
    """What the executors need to build the host the driver built: the
    options, and the bundles' and trust file's bytes. The driver loads and
    verifies them first, so a refusal is the CLI's, here and now."""
    Host(policies=policies, trust=trust, allow_unsigned=allow_unsigned, isolation=isolation)
    shipment = {"isolation": isolation, "allow_unsigned": bool(allow_unsigned), "bundles": None, "trust": None}
    if policies is not None:
        bundles = {}
        for name in sorted(os.listdir(policies)):
            path = os.path.join(policies, name)
            if os.path.islink(path) or not os.path.isdir(path):
                continue
            if not os.path.isfile(os.path.join(path, "manifest.toml")):
                continue
            bundles[name] = {
                file: _read(os.path.join(path, file), _MAX_FILE_BYTES)
                for file in _BUNDLE_FILES
                if os.path.isfile(os.path.join(path, file))
            }
        shipment["bundles"] = bundles
        if trust is not None:
            shipment["trust"] = _read(trust, _MAX_TRUST_BYTES)
    digest = hashlib.sha256(repr(sorted(_flatten(shipment))).encode()).hexdigest()
    shipment["digest"] = digest
    return shipment


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}/{key}")
    else:
        yield prefix, hashlib.sha256(value).hexdigest() if isinstance(value, bytes) else repr(value)


def _read(path, most):
    with open(path, "rb") as file:
        data = file.read(most + 1)
    if len(data) > most:
        raise Error(f"`{path}` is larger than the {most} bytes shipped to executors")
    return data


def _host(shipment):
    """This worker's host for ``shipment``, built once."""
    host = _hosts.get(shipment["digest"])
    if host is None:
        host = _build(shipment)
        _hosts[shipment["digest"]] = host
    return host


def _build(shipment):
    if shipment["bundles"] is None:
        return Host(isolation=shipment["isolation"])
    workdir = tempfile.mkdtemp(prefix="flowgate-")
    try:
        policies = os.path.join(workdir, "policies")
        os.mkdir(policies)
        for name, files in shipment["bundles"].items():
            if os.path.basename(name) != name or name in ("", ".", ".."):
                raise Error(f"`{name}` is not a bundle directory's name")
            os.mkdir(os.path.join(policies, name))
            for file, data in files.items():
                if file not in _BUNDLE_FILES:
                    raise Error(f"`{file}` is not a bundle file")
                with open(os.path.join(policies, name, file), "wb") as out:
                    out.write(data)
        trust = None
        if shipment["trust"] is not None:
            trust = os.path.join(workdir, "trust.toml")
            with open(trust, "wb") as out:
                out.write(shipment["trust"])
        return Host(
            policies=policies,
            trust=trust,
            allow_unsigned=shipment["allow_unsigned"],
            isolation=shipment["isolation"],
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
