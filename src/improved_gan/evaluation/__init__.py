"""Human evaluation: the paper's visual Turing test ("real or generated?") as a web application.

Salimans et al. 2016, section 4: annotators told real from generated MNIST samples in 52.4 % of
2,000 votes, CIFAR-10 samples in 78.7 %, and did better when told their mistakes.

- :func:`prepare_study` stores a study's real and generated images in one SQLite file;
- :func:`create_app` is the rating web application (Starlette), :func:`serve` runs it;
- :func:`write_report` turns the answers into Markdown, a bar chart and CSV.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "StudyDB": "study_db",
    "StudyReport": "report_stats",
    "create_app": "turing_app",
    "prepare_study": "turing_app",
    "serve": "turing_app",
    "summarize": "report_stats",
    "wilson_interval": "report_stats",
    "write_report": "report",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import on first use, so the CLI starts without loading the web stack."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
