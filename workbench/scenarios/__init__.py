"""Procedures as data: recorded sessions now, the smartphone service's scenarios as they come.

Layering (ARCHITECTURE): ``scenarios`` sits above ``lifecycle`` and ``analysis``; widgets,
plots and notebooks call it. :mod:`workbench.scenarios.samples` records and finds the sample
traces shipped with the package.
"""

from workbench.scenarios.samples import record_login, record_signing, trace_path

__all__ = ["record_login", "record_signing", "trace_path"]
