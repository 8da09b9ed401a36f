"""The ``imagerec`` console command (also ``python -m imagerec``): one argparse subcommand per job.

A subcommand is a function that adds its arguments to its own parser and sets ``run``, a function of the parsed
arguments that returns the exit status; ``main`` only dispatches. Add new ones to ``SUBCOMMANDS``.

    imagerec demo-data [--task detect] [--out PATH] [--train N --val N --imgsz N --seed N ...]
        writes a synthetic dataset (shapes on noise) and prints its path; by default the zip
        ``<data dir>/demo/demo-<task>.zip`` that the README's quick start registers. An ``--out`` ending in
        ``.zip`` is written as a zip, any other as a folder.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from imagerec import __version__
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


SUBCOMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "demo-data": ("write a synthetic dataset for the quick start (nothing downloaded)", _add_demo_data),
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
