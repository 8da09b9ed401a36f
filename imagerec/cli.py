"""The ``imagerec`` console command (also ``python -m imagerec``): one argparse subcommand per job.

A subcommand is a function that adds its arguments to its own parser and sets ``run``, a function of the parsed
arguments that returns the exit status; ``main`` only dispatches. Add new ones to ``SUBCOMMANDS``.

    imagerec demo-data [--task detect] [--out PATH] [--train N --val N --imgsz N --seed N ...]
        writes a synthetic dataset (shapes on noise) and prints its path; by default the zip
        ``<data dir>/demo/demo-<task>.zip`` that the README's quick start registers. An ``--out`` ending in
        ``.zip`` is written as a zip, any other as a folder.
    imagerec keys create --name ci --scope train [--scope annotate] [--expires 2027-01-31T00:00Z]
    imagerec keys list | imagerec keys revoke ID
        API keys, on the database of the data dir (``IMAGEREC_DATA_DIR``); the new key is printed once.
    imagerec worker [--queue gpu] [--concurrency N | --gpus 0,1] [--name NAME]
        a Celery worker running the tasks an API with ``IMAGEREC_EXECUTOR=celery`` sends (docs/deployment.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from imagerec import __version__
from imagerec.auth.scopes import Scope
from imagerec.config import Settings
from imagerec.datasets import synthetic


def _add_demo_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="detect", choices=sorted(synthetic.IMAGE_SUFFIX),
                        help="dataset kind (default detect)")
    parser.add_argument("--out", type=Path,
                        help="where to write: a .zip file, or else a folder (default <data dir>/demo/demo-<task>.zip)")
    synthetic.add_options(parser, **synthetic.DEMO_SIZES)
    parser.set_defaults(run=_demo_data)


def _demo_data(args: argparse.Namespace) -> int:
    out = args.out or Settings().data_dir / "demo" / f"demo-{args.task}.zip"
    try:
        written = synthetic.write(args.task, out, as_zip=out.suffix == ".zip", **synthetic.options_from(args))
    except ValueError as error:  # a bad --classes / --hidden combination: the generator's message says which
        print(f"imagerec demo-data: error: {error}", file=sys.stderr)
        return 2
    print(written.resolve())
    return 0


def _add_keys(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key and print it (shown this once)")
    create.add_argument("--name", required=True, help="shown in logs and on the records the key creates")
    create.add_argument("--scope", action="append", required=True, choices=[scope.value for scope in Scope],
                        help="read, annotate, train or admin; repeat for several")
    create.add_argument("--expires", type=datetime.fromisoformat,
                        help="ISO 8601 time with zone, e.g. 2027-01-31T00:00Z")
    actions.add_parser("list", help="list the keys (never the keys themselves)")
    revoke = actions.add_parser("revoke", help="revoke a key by id: refused from the next request on")
    revoke.add_argument("id", type=int)
    parser.set_defaults(run=_keys)


def _keys(args: argparse.Namespace) -> int:
    from imagerec.auth import cli_keys

    return cli_keys.run(args, Settings())


def _add_worker(parser: argparse.ArgumentParser) -> None:
    from imagerec.workers import cli as worker_cli

    worker_cli.add_arguments(parser)
    parser.set_defaults(run=worker_cli.run)


SUBCOMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "demo-data": ("write a synthetic dataset for the quick start (nothing downloaded)", _add_demo_data),
    "keys": ("create, list and revoke API keys (works on the data dir's database directly)", _add_keys),
    "worker": ("run tasks sent by an API with IMAGEREC_EXECUTOR=celery (Celery worker; docs/deployment.md)",
               _add_worker),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagerec", description="imagerec command-line tools.")
    parser.add_argument("--version", action="version", version=f"imagerec {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (summary, add_arguments) in SUBCOMMANDS.items():
        add_arguments(subparsers.add_parser(name, help=summary, description=summary))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)
