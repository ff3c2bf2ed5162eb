"""Hypothesis settings for the state machine tests: explore as the profile says, never shrink for minutes.

One attempt of a machine run is up to 40 steps of real I/O, each followed by every invariant,
so it costs a good fraction of a second; Hypothesis shrinks a failure for up to five minutes
(its own cap), which is also pytest's timeout here: a failure cost five minutes and was then
reported as a timeout, without its example. Shrinking explores nothing, it only shortens a
failure already found. So the machine tests run without the shrink phase (and without the
explain phase, which works on a shrunk failure): a failure is reported at once, as the steps
that failed with their draws, and the ``@reproduce_failure`` blob that replays it. What is
generated (the profile's examples, the steps, the draws) does not change.

``JOURNAL_SHRINK=1`` puts both phases back, for a minimal example (give pytest a ``--timeout``
above 300). Hypothesis replays a failure saved in its example database as already minimal, so
clear the one a run without shrinking saved (``rm -r .hypothesis/examples``) and let the run
find it again.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import Phase, settings

__all__ = ["SHRINK", "machine_settings"]

SHRINK = os.environ.get("JOURNAL_SHRINK") == "1"


def machine_settings(**overrides: Any) -> settings:
    """The loaded profile's settings with ``overrides``, and without shrinking unless asked."""
    phases = tuple(settings().phases)  # a new settings object inherits the loaded profile
    if not SHRINK:
        phases = tuple(p for p in phases if p not in (Phase.shrink, Phase.explain))
    return settings(phases=phases, **overrides)
