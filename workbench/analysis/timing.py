"""Per-APDU modelled time of a session that was not recorded by a tracer: a TSM's SCP03
personalisation of the phone's SE (smartphone-service.md 15.2 C1-C10, 15.9).

The TSM knows what each wrapped APDU was for, including the key generations that encryption
hides from a classifier (nfc-timing.md 15: a STORE DATA of DGI A017/A01A at level 33 is
``key_generation``), so its log is timed with that knowledge. Over OMAPI inside the phone
there is no air time (nfc-timing.md 12.6); :meth:`workbench.timing.TimingModel.omapi` is the
default model.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import TYPE_CHECKING

from workbench.se.tsm import TsmExchange
from workbench.timing import TimingModel

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["session_timing"]


def session_timing(exchanges: Iterable[TsmExchange], model: TimingModel | None = None, *,
                   seed: int | None = 0) -> pd.DataFrame:
    """One row per APDU: what it was for, the work it asked of the card, bytes each way and
    the modelled air / card / host / WTX / total milliseconds. ``seed`` draws the random card
    times (key generation) reproducibly; None takes their medians."""
    import pandas as pd

    model = model or TimingModel.omapi()
    rng = random.Random(seed) if seed is not None else None
    rows = []
    for seq, e in enumerate(exchanges, start=1):
        timing = model.exchange(e.command, e.response, operation=e.operation, rng=rng)
        rows.append({
            "seq": seq,
            "what": e.what,
            "operation": timing.operation.value,
            "command_bytes": len(e.command),
            "response_bytes": len(e.response),
            "air_ms": round(timing.air_ms, 3),
            "card_ms": round(timing.card_ms, 3),
            "host_ms": round(timing.host_ms, 3),
            "wtx_ms": round(timing.wtx_ms, 3),
            "total_ms": round(timing.total_ms, 3),
        })
    return pd.DataFrame(rows).set_index("seq") if rows else pd.DataFrame()
