"""The one grammar of `setting` strings: 'hash=frequency,layers=6' <-> {'hash': 'frequency', 'layers': '6'}.

Kept free of heavy imports: every job parses settings at start-up.
"""

from __future__ import annotations

import math
import re

from hashee.core.errors import HasheeError

# A number inside a name or setting: 3, 0.55, 1e-4, -0.5 after '=' (not the '-' of 'rand-cons' or 'BERT-3L').
_NUMBER = re.compile(r"((?:(?<==)-)?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")


def natural_key(text) -> list:
    """Sort key ordering the numbers inside `text` by value: 'patience=3' < 'patience=10',
    'threshold=0.5' < 'threshold=0.55' < 'threshold=0.6', 'lr=0.001' < 'lr=0.01'. Text parts compare as
    text; a number always sits at an odd position of the key, so keys of any two texts compare."""
    parts = _NUMBER.split(str(text))
    return [float(part) if i % 2 else part for i, part in enumerate(parts)]


def parse_setting(s) -> dict[str, str]:
    """'hash=frequency,layers=6' -> {'hash': 'frequency', 'layers': '6'} (values stay strings so
    that format_setting(parse_setting(s)) == s)."""
    if s is None or (isinstance(s, float) and math.isnan(s)) or not str(s).strip():
        return {}
    out: dict[str, str] = {}
    for part in str(s).split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise HasheeError(f"setting {s!r}: {part!r} is not key=value")
        if key in out:
            raise HasheeError(f"setting {s!r}: key {key!r} given twice")
        out[key] = value
    return out


def format_setting(d: dict) -> str:
    """Inverse of parse_setting; keeps the dict's order (sorting keys is not required)."""
    parts = []
    for key, value in d.items():
        key = str(key)
        value = str(value).lower() if isinstance(value, bool) else str(value)
        for text in (key, value):
            if not text or any(c in text for c in ",=") or text != text.strip():
                raise HasheeError(f"setting {key}={value}: keys and values must be non-empty, "
                                  "without ',' '=' or surrounding spaces")
        parts.append(f"{key}={value}")
    return ",".join(parts)


# The backbones experiment (docs/backbones.md) runs the same methods on other backbones: such a run's
# setting starts with `backbone=<label>`, so its results path and its result rows name the backbone.
# Every method accepts the key; the model itself comes from `hashee train --backbone`.
BACKBONE_KEY = "backbone"


def with_backbone(setting: str, label: str | None) -> str:
    """`setting` on the backbone labelled `label`: 'backbone=<label>,' + setting (None: unchanged)."""
    if label is None:
        return setting
    fields = parse_setting(setting)
    if BACKBONE_KEY in fields:
        raise HasheeError(f"setting {setting!r} already names a backbone")
    return format_setting({BACKBONE_KEY: label, **fields})


def backbone_label(setting) -> str | None:
    """The `backbone=<label>` of a setting, or None (a run on the config's own backbone)."""
    return parse_setting(setting).get(BACKBONE_KEY)
