"""One way for an operator command to run: its context loaded, its domain refusal printed as
``error: <message> (field <field>)`` on stderr with exit code 2, success 0 (or the command's
own code)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TextIO, TypeVar

from gateway.core.errors import DomainError

C = TypeVar("C")


def domain_command(run: Callable[[argparse.Namespace, C, TextIO], int | None],
                   load_context: Callable[[], C],
                   out: TextIO | None = None) -> Callable[[argparse.Namespace], int]:
    """``run`` as an argparse ``func``: the context is loaded when the command runs (not when
    the parser is built), output goes to ``out`` (stdout by default)."""
    def func(args: argparse.Namespace) -> int:
        try:
            return run(args, load_context(), out or sys.stdout) or 0
        except DomainError as error:
            where = f" (field {error.field})" if error.field else ""
            print(f"error: {error.message}{where}", file=sys.stderr)
            return 2
    return func


def domain_commands(load_context: Callable[[], C], out: TextIO | None = None
                    ) -> Callable[[Callable[[argparse.Namespace, C, TextIO], int | None]],
                                  Callable[[argparse.Namespace], int]]:
    """:func:`domain_command` with one command group's context loader and output bound:
    ``command = domain_commands(load_context, out)``, then ``func=command(_sync)``."""
    def command(run: Callable[[argparse.Namespace, C, TextIO], int | None]
                ) -> Callable[[argparse.Namespace], int]:
        return domain_command(run, load_context, out)
    return command
