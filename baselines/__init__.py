"""Baselines, one module each, registered in hashee.core.methods.REGISTRY on import.

Adding a baseline: write `baselines/<name>.py` with a `hashee.core.methods.Method` subclass decorated
with `@register`, import it below, and list it under `methods:` in the config.
"""

from baselines import (
    berxit,  # noqa: F401
    cascadebert,  # noqa: F401
    deebert,  # noqa: F401
    elasticbert,  # noqa: F401
    fastbert,  # noqa: F401
    headprune,  # noqa: F401
    ltp,  # noqa: F401
    pabee,  # noqa: F401
    powerbert,  # noqa: F401
    static,  # noqa: F401
    theseus,  # noqa: F401
    tinybert,  # noqa: F401
)
