"""Flowgate from Python: decide proposed data flows against regulators' policies.

The host is the one ``flowgate check`` runs (the same Rust code, built into
this package), so its decisions are the CLI's, field for field::

    import flowgate

    host = flowgate.Host()                      # the embedded reference set
    host.decide({"id": "f-1", "platform": {"id": "meituan"}, "action": "use",
                 "data": {"categories": ["contact"]}, "purpose": "service",
                 "lawful_basis": "contract"})
    # {'id': 'f-1', 'effect': 'allow', 'obligations': [], 'remedies': [], 'reasons': []}

    import pyarrow.json
    decisions = host.decide_batch(pyarrow.json.read_json("examples/flows.jsonl"))

- ``Host(policies=None, trust=None, allow_unsigned=False, isolation=None,
  log=None, log_key=None)``: the options of ``flowgate check``; a refusal
  raises ``flowgate.Error`` with the CLI's message.
- ``host.decide(record)``: a dict or its JSON text; the decision as a dict.
  An invalid record raises ``flowgate.RecordError`` (a ``ValueError``).
- ``host.decide_batch(table)``: a ``pyarrow.Table`` or ``RecordBatch``
  shaped like ``FLOW_SCHEMA``; a table of ``DECISION_SCHEMA`` in input
  order, with ``error`` set on the rows that are not valid records.
- ``flowgate.spark``: the same on Spark DataFrames, and decision logs
  verified across executors.

Every call releases the GIL while it decides; one ``Host`` may be shared by
many threads.
"""

from ._flowgate import Error, Host, RecordError, __version__
from ._flowgate import decision_schema as _decision_schema
from ._flowgate import flow_schema as _flow_schema

#: The flow record as Arrow columns (``pyarrow.Schema``), as
#: ``pyarrow.json.read_json`` reads full records: groups are structs, whole
#: numbers ``int64``, ``report_coverage`` ``float64``. Every field is
#: nullable; a null is a value left out. Other integer and string layouts
#: are read too (see the README, "From Python and Spark").
FLOW_SCHEMA = _flow_schema()

#: The table ``Host.decide_batch`` returns (``pyarrow.Schema``).
DECISION_SCHEMA = _decision_schema()

__all__ = ["DECISION_SCHEMA", "FLOW_SCHEMA", "Error", "Host", "RecordError", "__version__"]
