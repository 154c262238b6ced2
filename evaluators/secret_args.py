"""Command-line secrets that may start with a dash.

``argparse`` reads ``--token -Xy...`` as a missing value followed by an unknown option, yet
``secrets.token_urlsafe`` produces such tokens about one time in 32. The helper here glues the
value to its option (``--token=-Xy...``) before parsing, so any token works in either spelling.
It imports nothing beyond the standard library, because the torch-free agent uses it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence


def glue_secret_values(argv: Sequence[str] | None, options: Iterable[str]) -> list[str]:
    """Join each of ``options`` with the argument after it into one ``OPTION=VALUE`` token.

    Args:
        argv: Command-line arguments without the program name (``None``: ``sys.argv[1:]``).
        options: Option strings whose value is a secret, e.g. ``{"--token"}``.

    Returns:
        A new argument list; an option given last, with no value, is left for argparse to report.
        Arguments after a bare ``--`` are never touched.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    secret_options = set(options)
    glued: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            glued.extend(args[index:])
            break
        if arg in secret_options and index + 1 < len(args):
            glued.append(f"{arg}={args[index + 1]}")
            index += 2
            continue
        glued.append(arg)
        index += 1
    return glued
