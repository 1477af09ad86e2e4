"""``python -m bench data {import,generate,show}``: the dataset commands.

Every value is checked before anything is read or written: a dataset name is a plain directory
name inside the data root, sizes are positive and large enough, and an existing dataset is
never replaced without ``--force`` (then the old one stays in place until the new one is
complete: `bench.data.store.write_dataset` builds the new one aside and swaps it in).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from bench.errors import BenchError, UsageError


def add_parser(sub, add_data_root: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    """The ``data`` subcommand and its actions, on the subparsers `sub` of ``python -m bench``."""
    from bench.data.synthetic import PRESETS

    data = sub.add_parser("data", help="import, generate and inspect datasets")
    dsub = data.add_subparsers(dest="data_cmd", metavar="ACTION")
    imp = dsub.add_parser("import", help="import a P5/VIP5 release directory or a plain sequence file")
    imp.add_argument("path")
    imp.add_argument("--name", required=True)
    imp.add_argument("--seed", type=int, default=2022, help="seed for candidate lists and splits")
    imp.add_argument(
        "--force", action="store_true", help="replace a dataset of that name (kept until the new one is complete)"
    )
    add_data_root(imp)
    show = dsub.add_parser("show", help="counts, tasks available, provenance")
    show.add_argument("name")
    add_data_root(show)
    gen = dsub.add_parser("generate", help="generate a synthetic dataset")
    gen.add_argument("--name", default=None, help="dataset name (default: the preset's name)")
    gen.add_argument("--preset", default="synthetic", choices=sorted(PRESETS),
                     help="synthetic: the embedded dense shop; sparse: shaped like Amazon Clothing (~7 items per user)")
    gen.add_argument("--users", type=int, default=None, help="number of users (default: the preset's)")
    gen.add_argument("--items", type=int, default=None, help="number of items (default: the preset's)")
    gen.add_argument("--seed", type=int, default=2022)
    gen.add_argument(
        "--force", action="store_true", help="replace a dataset of that name (kept until the new one is complete)"
    )
    add_data_root(gen)
    return data


def _refuse_existing(name: str, root: Path, force: bool) -> None:
    if (root / name).exists() and not force:
        raise UsageError(f"dataset {name!r} already exists ({root / name}); nothing was changed. Add --force to "
                         "replace it (the old one stays until the new one is complete), or choose another --name")


def cmd_data(args) -> int:
    from bench.data import data_root
    from bench.data.store import check_name

    root = data_root(args.data_root)
    if args.data_cmd == "import":
        from bench.data.importers import import_path

        check_name(args.name, root)
        _refuse_existing(args.name, root, args.force)
        out = import_path(Path(args.path), root, args.name, seed=args.seed)
        print(f"imported {args.path} as {args.name!r} -> {out}")
        return show(args.name, args.data_root)
    if args.data_cmd == "show":
        return show(args.name, args.data_root)
    if args.data_cmd == "generate":
        from bench.data.synthetic import PRESETS, check_generate_args, generate

        name = args.name or args.preset
        check_name(name, root)
        p = PRESETS[args.preset]
        check_generate_args(p["n_users"] if args.users is None else args.users,
                            p["n_items"] if args.items is None else args.items, args.preset)
        _refuse_existing(name, root, args.force)
        out = generate(root, name=name, seed=args.seed, n_users=args.users, n_items=args.items, preset=args.preset)
        print(f"generated {out}")
        return show(name, args.data_root)
    raise UsageError("python -m bench data: choose an action: import, show or generate")


def show(name: str, root) -> int:
    """Print a dataset's counts, tasks (and why a task is missing), features and provenance."""
    import json

    from bench.data import check_dataset_name, data_root, load_dataset

    check_dataset_name(name, root)
    data = load_dataset(name, root)
    m = data.manifest
    lines = [f"dataset {name}  ({data_root(root) / name})"]
    lines += [f"  {k:<14}{v:>10,}" for k, v in m["counts"].items()]
    lens = [len(s) for s in data.sequences]
    lines.append(f"  sequence length: min {min(lens)}, mean {sum(lens) / len(lens):.1f}, max {max(lens)}")
    lines.append(f"  tasks:          {', '.join(data.tasks)}")
    lines += [f"  no {t} task:  {why}" for t, why in data.task_support.items() if why]
    lines.append(f"  attributes:     {'yes' if any(it.attributes for it in data.items) else 'no'}")
    lines.append(f"  feature sets:   {', '.join(data.feature_sets) or 'none'}")
    fmt = m.get("format") or {}
    lines.append(f"  format:         {fmt.get('by', 'unrecorded')} version {fmt.get('version', 1)}")
    lines.append(f"  created:        {m.get('created')}  seed {m['seed']}")
    lines.append("  provenance:     " + json.dumps(m.get("provenance", {}), indent=2).replace("\n", "\n  "))
    try:
        print("\n".join(lines), flush=True)
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        _quiet_stdout()
    return 0


def _quiet_stdout() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # Python's flush at exit must not raise again


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.data.cli ACTION ...``: the same commands on their own (exit 2 for bad input)."""
    ap = argparse.ArgumentParser(prog="python -m bench")
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND")
    add_parser(sub, lambda p: p.add_argument("--data-root", default=None,
                                             help="dataset directory (default: $BENCH_DATA or ./data)"))
    args = ap.parse_args(["data", *(sys.argv[1:] if argv is None else argv)])
    try:
        return cmd_data(args)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
