"""The one error type of :mod:`workbench.timing`.

The timing layer only fails on parameters that the standard or the model does not allow (a
bit-rate divisor of 3, an FWI of 15, a negative processing time). Such a value is a caller's
mistake, not a protocol event, so the error is a :class:`ValueError`; it also derives from
:class:`~workbench.errors.WorkbenchError` so the workbench's catch-all handlers see it. Its
message is one line naming the allowed values and the spec section (nfc-timing.md).
"""

from __future__ import annotations

from workbench.errors import WorkbenchError

__all__ = ["TimingParameterError"]


class TimingParameterError(WorkbenchError, ValueError):
    """A timing parameter outside what nfc-timing.md allows; the message says what is allowed."""
