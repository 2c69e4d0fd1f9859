"""`hashee <verb>`: the command line the workflow's rules call. Thin: parse arguments, call the
library, write outputs atomically (temporary name, then rename). User errors print one line.

Verbs live by subject: `training` (fit-hash, train, evaluate: both studies), `elue` (data, time, tables,
submission), `summarization_data` (demo data, table), `difficulty`, `rehearsal` (tiny checkpoints, synthetic data), `methods` (what is registered);
`summarization` holds summarization's evaluation for `training`.
"""

from __future__ import annotations

import argparse
import os
import sys

from hashee.core.errors import HasheeError


def build_parser() -> argparse.ArgumentParser:
    from hashee.cli import difficulty, elue, methods, rehearsal, summarization_data, training

    parser = argparse.ArgumentParser(prog="hashee", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for module in (training, elue, difficulty, summarization_data, rehearsal, methods):
        module.add_parsers(sub)
    return parser


def main(argv=None) -> int:
    """The `hashee` command."""
    return run(argv)


def run(argv=None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        code = args.func(args)
    except HasheeError as err:
        print(f"hashee {args.verb}: error: {err}", file=sys.stderr)
        return 2
    return int(code or 0)

