"""What every Huifang service shares: the event envelope and schemas, errors,
the clock and working-day calendar, the MongoDB store and reliable messaging."""

import atexit
import logging

from shared.patches import close_logging_before_greenlets_end

# no "greenlet is being finalized" traceback at exit (shared/patches.py says why)
atexit.register(close_logging_before_greenlets_end)


class _ExpectedErrorsInOneLine(logging.Filter):
    """nameko logs an entrypoint's expected error (InvalidInput, NotFound, …) as a warning
    *with* its traceback: refused input is routine, so one line without it is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("(expected)"):
            record.exc_info = None
            record.exc_text = None
        return True


logging.getLogger("nameko.containers").addFilter(_ExpectedErrorsInOneLine())
