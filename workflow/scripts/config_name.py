"""The config name a Snakemake command line selects, for `make report` (results/<name>/report.html).

    python workflow/scripts/config_name.py [SNAKEMAKE ARGS...]

Snakemake merges config/config.yaml, then each `--configfile` in order, then `--config KEY=VALUE`;
the last `name` wins. Other arguments are ignored. A file that cannot be read is a one-line error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

DEFAULT = Path(__file__).resolve().parents[2] / "config" / "config.yaml"


def config_name(argv: list[str], default: Path = DEFAULT) -> str:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--configfile", "--configfiles", nargs="+", action="extend", default=[])
    parser.add_argument("--config", "-C", nargs="+", action="extend", default=[])
    args, _ = parser.parse_known_args(argv)
    name = None
    for path in [default, *map(Path, args.configfile)]:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as err:
            raise SystemExit(f"config_name.py: {path}: cannot read ({type(err).__name__}: {err})") from None
        if isinstance(loaded, dict) and loaded.get("name") is not None:
            name = str(loaded["name"])
    for item in args.config:
        key, _, value = item.partition("=")
        if key == "name" and value:
            name = value
    if not name:
        raise SystemExit("config_name.py: no config key 'name' in " + ", ".join(map(str, [default, *args.configfile])))
    return name


if __name__ == "__main__":
    print(config_name(sys.argv[1:]))
