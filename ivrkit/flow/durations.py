"""Durations as flow files write them: "5s", "250ms", "1.5s", "2m", or a bare number of seconds.

Kept separate from the loader because the runtime and the CLI may want to parse the same
spelling (e.g. `--timeout 3s`), and one parser means one set of rules in the docs.
"""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
DURATION_HELP = 'write a duration like "5s", "250ms", "1.5s", "2m" or a number of seconds'


def parse_duration(value: object) -> float:
    """Seconds as a float. Raises ValueError (with what to write instead) for anything else.

    Negative, infinite and NaN values are refused: no timer in a phone call runs backwards or
    forever, and a typo like "-5s" should not silently mean "fire at once".
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a boolean, not a duration; {DURATION_HELP}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"cannot read {value!r} as a duration; {DURATION_HELP}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration; {DURATION_HELP}")
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a usable duration (must be finite and not negative)")
    return seconds
