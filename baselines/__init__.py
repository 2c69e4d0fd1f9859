"""Baselines, one module each, registered in hashee.methods.REGISTRY on import.

Adding a baseline: write `baselines/<name>.py` with a `hashee.methods.Method` subclass decorated
with `@register`, import it below, and list it under `methods:` in the config.
"""

from . import static  # noqa: F401
