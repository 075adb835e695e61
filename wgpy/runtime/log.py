"""The runtime's log (the logger named "wgpy"), with the ``logging`` module loaded for the first line written.

``logging`` brings ``re``, ``traceback``, ``threading``, ``string`` and ``weakref``: about 5 ms of the
daemon's start-up (benchmarks/bench_startup.py), spent on an idle daemon that, at the default level
(error), may never write a line. The runtime logs through :data:`log`, which has the calls of
``logging.Logger`` it makes. While nobody has imported ``logging`` nobody has configured it either, so
whether a level is enabled is known without it: the level :func:`configure` set, else ``logging``'s own
default (WARNING). Once ``logging`` is imported (for the first line written, or by a program that embeds
the runtime, or by pytest), every call goes to ``logging.getLogger("wgpy")``, configured first.
"""

from __future__ import annotations

import sys
import time

# logging's levels, and the daemon's LOG_LEVEL names for them, as wireguard-go's.
DEBUG, WARNING, ERROR, CRITICAL = 10, 30, 40, 50
LOG_LEVELS = {"verbose": DEBUG, "debug": DEBUG, "error": WARNING, "silent": CRITICAL + 1}


class LazyLogger:
    """``debug``, ``warning``, ``error`` and ``isEnabledFor`` of a ``logging.Logger``, loading ``logging``
    only when a line is to be written."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.level = WARNING   # logging's default, until configure() says otherwise
        self._setup = None     # configure()'s work, done with the logging module once it is loaded

    def defer(self, level: int, setup) -> None:
        """Take ``level`` as the logger's until ``logging`` is loaded; then first call ``setup(logging)``."""
        self.level, self._setup = level, setup

    def logger(self):
        """The ``logging.Logger`` itself (importing ``logging``, and configuring it if asked)."""
        import logging

        setup, self._setup = self._setup, None
        if setup is not None:
            setup(logging)
        return logging.getLogger(self.name)

    def isEnabledFor(self, level: int) -> bool:
        if "logging" not in sys.modules:
            return level >= self.level
        return self.logger().isEnabledFor(level)

    def log(self, level: int, message: str, *args, **kwargs) -> None:
        if self.isEnabledFor(level):
            self.logger().log(level, message, *args, stacklevel=2, **kwargs)

    def debug(self, message: str, *args, **kwargs) -> None:
        if self.isEnabledFor(DEBUG):
            self.logger().debug(message, *args, stacklevel=2, **kwargs)

    def warning(self, message: str, *args, **kwargs) -> None:
        if self.isEnabledFor(WARNING):
            self.logger().warning(message, *args, stacklevel=2, **kwargs)

    def error(self, message: str, *args, **kwargs) -> None:
        if self.isEnabledFor(ERROR):
            self.logger().error(message, *args, stacklevel=2, **kwargs)


log = LazyLogger("wgpy")


def configure(interface: str, level_name: str | None) -> int:
    """The daemon's log: wireguard-go's lines (``DEBUG: (wg0) 2026/11/25 03:30:00 message``) on standard
    output, from the level ``LOG_LEVEL`` names (error by default); returns that level. ``logging`` is
    loaded now only if lines are expected (verbose) or it is loaded already."""
    level = LOG_LEVELS.get((level_name or "error").lower(), ERROR)

    def setup(logging) -> None:
        logger = logging.getLogger(log.name)
        logger.handlers.clear()
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(_formatter(logging, interface))
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False

    log.defer(level, setup)
    if level <= DEBUG or "logging" in sys.modules:
        log.logger()
    return level


def _formatter(logging, interface: str):
    class Format(logging.Formatter):
        def format(self, record) -> str:
            kind = "DEBUG" if record.levelno <= DEBUG else "WARNING" if record.levelno == WARNING else "ERROR"
            stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(record.created))
            return f"{kind}: ({interface}) {stamp} {record.getMessage()}"

    return Format()
