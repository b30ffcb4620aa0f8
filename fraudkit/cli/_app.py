"""The Typer app and the few helpers every command shares."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

from fraudkit.errors import FraudkitError

app = typer.Typer(
    name="fraudkit",
    help="Find fraud in medical-insurance claim batches and rank providers for flight inspection.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

#: Exit code for input that breaks the contract or a bad argument value.
EXIT_BAD_INPUT = 2


class UserError(FraudkitError):
    """Bad input that is not a batch (a scenario file, a model, an outcomes file, an option).

    Raised anywhere in fraudkit; the CLI prints it as one paragraph and exits 2.
    """


@app.callback()
def _root() -> None:
    """Find fraud in medical-insurance claim batches and rank providers for flight inspection."""


def warn(message: str) -> None:
    """Print a warning about the input (as text: it may quote ids)."""
    console.print(Text.assemble(("warning: ", "yellow"), message), highlight=False, soft_wrap=True)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print a one-paragraph error (no traceback) and exit with ``code``."""
    # The message quotes ids and values from the input: print it as text, never as markup.
    err_console.print(Text.assemble(("error: ", "bold red"), message), highlight=False, soft_wrap=True)
    sys.exit(code)
