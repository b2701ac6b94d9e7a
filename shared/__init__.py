"""What every Huifang service shares: the event envelope and schemas, errors,
the clock and working-day calendar, the MongoDB store and reliable messaging."""

import atexit
import logging


@atexit.register
def _close_logging_while_greenlets_run():
    """Under eventlet, a logging handler collected after the main greenlet began to
    finalize fails its clean-up ("greenlet is being finalized", e.g. jieba's own
    handler). Flush and close every handler first, then let none be cleaned up late."""
    logging.shutdown()
    logging._handlerList.clear()


class _ExpectedErrorsInOneLine(logging.Filter):
    """nameko logs an entrypoint's expected error (InvalidInput, NotFound, …) as a warning
    *with* its traceback: refused input is routine, so one line without it is enough."""

    def filter(self, record):
        if isinstance(record.msg, str) and record.msg.startswith("(expected)"):
            record.exc_info = None
            record.exc_text = None
        return True


logging.getLogger("nameko.containers").addFilter(_ExpectedErrorsInOneLine())
