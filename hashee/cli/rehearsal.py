"""The rehearsal's verbs (config/rehearsal.yaml): `hashee tiny-checkpoint` writes a tiny random checkpoint in
a hub model's layout, `hashee summ-synthetic-data` a summarization data set's layout with synthetic text."""

from __future__ import annotations


def cmd_tiny_checkpoint(args) -> None:
    from hashee.core.io import atomic_dir
    from hashee.studies.rehearsal.checkpoints import hub_shape, write_hub_checkpoint

    shape = hub_shape(args.hub_name)  # an unknown family fails before anything is written
    with atomic_dir(args.out) as tmp:
        write_hub_checkpoint(args.hub_name, tmp, seed=args.seed)
    print(f"wrote a tiny random {shape['family']} checkpoint standing in for {args.hub_name} "
          f"({', '.join(f'{k}={v}' for k, v in shape.items() if k != 'family')}) to {args.out}")


def cmd_summ_synthetic_data(args) -> None:
    from hashee.studies.summarization.data import write_synthetic

    write_synthetic(args.dataset, args.out, seed=args.seed, size=args.size)
    print(f"wrote synthetic {args.dataset} data in its real layout (seed {args.seed}, size {args.size}) to {args.out}")


def add_parsers(subparsers) -> None:
    from hashee.studies.summarization.data import DEMO_SIZES

    p = subparsers.add_parser("tiny-checkpoint", help="a tiny random checkpoint in a hub model's layout (the rehearsal)")
    p.add_argument("--hub-name", required=True, help="the hub model it stands in for, e.g. bert-base-uncased")
    p.add_argument("--out", required=True, help="folder to write (config.json, tokenizer files, model.safetensors)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_tiny_checkpoint)

    p = subparsers.add_parser("summ-synthetic-data",
                              help="synthetic text in a summarization data set's real layout (the rehearsal)")
    p.add_argument("--dataset", required=True, help="cnndm, reddit, csl or ttnews")
    p.add_argument("--out", required=True, help="the data set's folder to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", default="tiny", choices=list(DEMO_SIZES))
    p.set_defaults(func=cmd_summ_synthetic_data)
