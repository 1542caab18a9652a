"""Analysis: decoding traces, the tables notebooks show, and what inspection commands report.

Layering (ARCHITECTURE): ``analysis`` sits above ``transport``, ``card``, ``client`` and
``pki`` and may import them; the transport layer below it only moves and records bytes.
"""

from workbench.analysis.decode import (
    SCENARIO_COLUMNS,
    Annotator,
    ap_name,
    decode_scenario,
    decode_trace,
    describe_p1p2,
    object_name,
)
from workbench.analysis.inspect import describe_card, inspect_card
from workbench.analysis.timing import session_timing
from workbench.analysis.tracing import TracingTransport, exchanges_frame

__all__ = [
    "SCENARIO_COLUMNS",
    "Annotator",
    "TracingTransport",
    "ap_name",
    "decode_scenario",
    "decode_trace",
    "describe_card",
    "describe_p1p2",
    "exchanges_frame",
    "inspect_card",
    "object_name",
    "session_timing",
]
