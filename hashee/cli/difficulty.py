"""CLI verbs of the difficulty study (registered into `hashee` by `add_parsers`):

- `hashee difficulty-data --snli-dir D --tagging-dir D [--seed S] [--size small|tiny]`
- `hashee difficulty-run {human,sentence,token} --params JSON --out ROWS.csv --workdir W [--seed N] [--device D]`
- `hashee difficulty-table --rows ROWS.csv ... --out-dir DIR [--config-name C]`
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hashee.studies.difficulty import STUDIES


def cmd_difficulty_data(args) -> None:
    from hashee.studies.difficulty.data import write_demo

    paths = write_demo(args.snli_dir, args.tagging_dir, seed=args.seed, size=args.size)
    print(f"wrote {len(paths)} files of offline difficulty data")


def cmd_difficulty_run(args) -> None:
    from hashee.cli.common import resolve_device
    from hashee.core.backbones import load_backbone
    from hashee.core.errors import HasheeError
    from hashee.core.io import write_csv_atomic
    from hashee.studies.difficulty import study

    try:
        cfg = json.loads(args.params)
    except json.JSONDecodeError as err:
        raise HasheeError(f"--params: not JSON ({err})") from None
    for key in ("snli_dir", "tagging_dir", "max_length", "dev_fraction"):
        if key not in cfg:
            raise HasheeError(f"--params: config key 'difficulty.{key}' is missing")
    backbone_key = "tagging_backbone" if args.study == "token" else "backbone"
    backbone = load_backbone(cfg[backbone_key], cfg.get("layers"))
    runner = {"human": study.run_human, "sentence": study.run_sentence, "token": study.run_token}[args.study]
    frame = study.check_finite(runner(cfg, backbone, args.seed, Path(args.workdir), resolve_device(args.device)), args.study)
    write_csv_atomic(args.out, frame)
    shutil.rmtree(args.workdir, ignore_errors=True)
    print(frame.to_string(index=False))


def cmd_difficulty_table(args) -> None:
    from hashee.studies.difficulty.table import write_difficulty_tables

    for path in write_difficulty_tables(args.rows, args.out_dir, args.config_name):
        print(path)


def add_parsers(sub) -> None:
    p = sub.add_parser("difficulty-data", help="write offline SNLI-raw and tagging data for the difficulty study")
    p.add_argument("--snli-dir", required=True)
    p.add_argument("--tagging-dir", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", default="small", choices=["small", "tiny"])
    p.set_defaults(func=cmd_difficulty_data)

    p = sub.add_parser("difficulty-run", help="one difficulty study (human / sentence / token) -> result rows")
    p.add_argument("study", choices=STUDIES)
    p.add_argument("--params", required=True, help="the config's `difficulty` section as JSON")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="auto")
    p.add_argument("--workdir", required=True, help="resume checkpoints (removed when done)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_difficulty_run)

    p = sub.add_parser("difficulty-table", help="the difficulty table (md/csv/tex), ours beside the paper's")
    p.add_argument("--rows", nargs="+", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--config-name", default="")
    p.set_defaults(func=cmd_difficulty_table)
