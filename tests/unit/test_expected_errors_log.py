"""A refused call is one log line; an unexpected error keeps its traceback."""
import logging
import sys

import shared  # noqa: F401 - installs the filter, as every service does


def _record(message, *args):
    try:
        raise ValueError("boom")
    except ValueError:
        logger = logging.getLogger("nameko.containers")
        return logger.makeRecord(logger.name, logging.WARNING, __file__, 1, message, args,
                                 exc_info=sys.exc_info())


def _formatted(record):
    for flt in logging.getLogger("nameko.containers").filters:
        flt.filter(record)
    return logging.Formatter("%(levelname)s %(message)s").format(record)


def test_an_expected_error_is_one_line():
    text = _formatted(_record("(expected) error handling worker %s: %s", "w", "not found"))
    assert text == "WARNING (expected) error handling worker w: not found"


def test_an_unexpected_error_keeps_its_traceback():
    text = _formatted(_record("error handling worker %s: %s", "w", "boom"))
    assert "Traceback" in text and "ValueError: boom" in text
