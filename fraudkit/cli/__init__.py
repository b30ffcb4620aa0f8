"""The ``fraudkit`` command line: one Typer app, one module per command group.

Every command reports bad input as a one-paragraph message on stderr and exit
code 2, never a traceback, and writes nothing when it fails.
"""

from __future__ import annotations

import sys

from ._app import EXIT_BAD_INPUT, UserError, app, console, err_console, fail  # noqa: F401

# Each module registers its commands on ``app`` when imported.
from . import _score, _validate  # noqa: F401,E402
from . import _evaluate  # noqa: F401,E402
from . import _generate  # noqa: F401,E402
from . import _train  # noqa: F401,E402
from . import _outcomes  # noqa: F401,E402


def main() -> None:
    """Console-script entry point: usage errors exit 2 (Typer), contract breaks exit 2 (here)."""
    from fraudkit.errors import FraudkitError

    try:
        app()
    except FraudkitError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        err_console.print("Interrupted; nothing was written.")
        sys.exit(130)
