"""The tracing wrapper that decodes as it records, and the tables notebooks show.

:class:`TracingTransport` is :class:`workbench.transport.RecordingTransport` with the
decoder of :mod:`workbench.analysis.decode` as its annotator: every recorded exchange carries
its ``decoded`` view (application, file, PIN, key, status word in English and Japanese,
certificate facts), in memory and in the JSON Lines file. Its DataFrames are made here, above
the transport layer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

from workbench.analysis.decode import Annotator, decode_trace
from workbench.transport.base import Transport
from workbench.transport.recorder import Exchange, RecordingTransport, TimingSource

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TracingTransport", "exchanges_frame"]


class TracingTransport(RecordingTransport):
    """Records every power event and exchange, masked, and decodes each as it goes.

    Arguments as :class:`~workbench.transport.RecordingTransport` (``path``, ``profile``,
    ``description``, ``timing``, ``metadata``); the annotator is the trace decoder's.
    :meth:`to_dataframe` gives the compact table of exchanges, :meth:`decode` the fully
    annotated one (:func:`workbench.analysis.decode_trace`).
    """

    def __init__(
        self,
        inner: Transport,
        path: str | os.PathLike[str] | TextIO | None = None,
        *,
        profile: str | None = None,
        description: str | None = None,
        timing: TimingSource | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(inner, path, profile=profile, description=description, timing=timing,
                         metadata=metadata, annotator=Annotator())

    def __enter__(self) -> TracingTransport:
        self.connect()
        return self

    def to_dataframe(self, *, wall_clock: bool = False) -> pd.DataFrame:
        """The exchanges as a compact DataFrame; wall-clock times only when asked (they vary
        run to run). :meth:`decode` gives the fully annotated view."""
        return exchanges_frame(self.exchanges, wall_clock=wall_clock)

    def decode(self) -> pd.DataFrame:
        """:func:`~workbench.analysis.decode_trace` of what was recorded so far."""
        return decode_trace(self)


def exchanges_frame(exchanges: list[Exchange], *, wall_clock: bool = False) -> pd.DataFrame:
    """One row per recorded exchange: seq, command, masked APDU, response size, SW, status."""
    import pandas as pd

    rows = [
        {
            "seq": e.seq,
            "command": e.description,
            "apdu": e.command,
            "resp_bytes": e.response_length,
            "sw": f"{e.sw:04X}" if e.sw >= 0 else "----",
            "status": e.status.split(" ", 1)[1] if " " in e.status else e.status,
            **({"wall_ms": round(e.wall_ms, 3)} if wall_clock else {}),
        }
        for e in exchanges
    ]
    return pd.DataFrame(rows).set_index("seq") if rows else pd.DataFrame()
