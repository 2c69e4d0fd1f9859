"""One exception type for user-facing errors: the CLI prints its message as one line and exits 2."""


class HasheeError(Exception):
    """Bad input or configuration; the message names the file/line/key and the problem."""


def unknown_name(kind: str, name: str, valid) -> HasheeError:
    return HasheeError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(valid))}")
