"""The ``ebgan`` command: parse, build, call. Each command group lives in ebgan.commands.*."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import traceback
from typing import NoReturn

from ebgan.errors import EbganError, one_line

# One module per command group; each has register(subparsers) setting ``func``.
COMMANDS = [
    "ebgan.commands.train",
    "ebgan.commands.sample",
    "ebgan.commands.compare",
    "ebgan.commands.energy",
    "ebgan.commands.anomaly",
    "ebgan.commands.eval",
    "ebgan.commands.classifier",
    "ebgan.commands.presets",
    "ebgan.commands.sweep",
    "ebgan.commands.contrastive",
]


class _Parser(argparse.ArgumentParser):
    """argparse's own refusals (an unknown flag, a missing value, an unknown command) as one line, like
    every other mistake, instead of a usage block and '<prog>: error:'. Sub-parsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        print(f"ebgan: error: {' '.join(message.split())}; see '{self.prog} --help'", file=sys.stderr)
        sys.exit(2)

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras and " " in self.prog:  # a command's parser: refuse here, naming the command's --help
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ebgan",
        description="Energy-based GANs (Zhao, Mathieu & LeCun 2017) and the GANs they are measured against.",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the Python traceback of an error (also: {DEBUG_ENV}=1), for bug reports",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def _version() -> str:
    """The installed distribution's version and torch's: what a bug report needs first."""
    import torch

    from ebgan import __version__

    return f"{__version__} (torch {torch.__version__})"


DEBUG_ENV = "EBGAN_DEBUG"


def _fail(message: str, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(f"ebgan: error: {' '.join(str(message).split())}", file=sys.stderr)  # one line, always
    return code


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done; 2 a mistake in the input (the message names the fix); 1 the environment
    failed (disk, permissions, memory) or a bug; 128 + N stopped by signal N (training: checkpoint
    written; 141: the reader of stdout left, as SIGPIPE would)."""
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        return args.func(args) or 0
    except EbganError as e:
        return _fail(str(e), 2, debug)
    except KeyboardInterrupt:
        print("ebgan: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout's reader left (ebgan presets NAME | head): stop quietly, as SIGPIPE would
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 128 + 13
    except (OSError, MemoryError) as e:
        return _fail(f"{e.__class__.__name__}: {e}", 1, debug)
    except RuntimeError as e:
        if _lost_a_process(e):
            return _fail(
                f"rank {os.environ.get('RANK', '?')} stopped: a collective with the other processes failed "
                f"({one_line(e)}); "
                "another process most likely stopped first (its error is above), or the wait passed "
                "EBGAN_DIST_TIMEOUT_MIN",
                1,
                debug,
            )
        if not _out_of_memory(e):
            return _internal(e, debug)
        return _fail(f"out of memory ({one_line(e)}); lower --batch-size or the networks' size", 1, debug)
    except Exception as e:  # a bug: say so, keep the line short, keep the traceback one flag away
        return _internal(e, debug)


def _internal(e: Exception, debug: bool) -> int:
    return _fail(
        f"internal error {e.__class__.__name__}: {e} (a bug; run again with --debug and report the traceback)",
        1,
        debug,
    )


def _lost_a_process(e: RuntimeError) -> bool:
    """Under torchrun, a collective's failure (gloo's or NCCL's): what the other ranks see when one
    stops with its own error, which is the one to read; not a bug of theirs."""
    dist = sys.modules.get("torch.distributed")  # the group is destroyed by now: ask torchrun's variable
    if os.environ.get("WORLD_SIZE", "1") in ("", "0", "1") or dist is None:
        return False
    return isinstance(e, getattr(dist, "DistError", ())) or any(word in str(e) for word in ("gloo", "NCCL", "nccl"))


def _out_of_memory(e: RuntimeError) -> bool:
    """torch's allocation failures: torch.OutOfMemoryError (CUDA and others), or the CPU allocator's
    RuntimeError; an environment's limit, not a bug."""
    return e.__class__.__name__ == "OutOfMemoryError" or "can't allocate memory" in str(e)


if __name__ == "__main__":
    sys.exit(main())
