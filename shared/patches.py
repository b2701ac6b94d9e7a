"""Where Huifang reaches into another library's private parts: only where no supported way
exists, each with its reason, each checked by ``tests/unit/test_patches.py``, which fails
when the library changes under the patch (a new version: read the patch again).

* **logging** (the standard library), here: ``close_logging_before_greenlets_end``.
* **mongomock** (the embedded store, a test double), in ``shared/embedded.py``: its
  collections answer from hash indexes and its cursor stops copying; its document copies
  (``copy.deepcopy`` in ``mongomock.collection``, and the whole snapshot ``_update`` takes
  of each document it changes), its walk of every write for dates
  (``helpers.patch_datetime_awareness_in_document``) and its version checks per field
  (``version.parse``) cost less; the module's docstring says what and why.

nameko's RPC reply table is not patched: ``shared.rpc`` keeps a table of its own through
the reply listener's public methods.
"""
import logging


def close_logging_before_greenlets_end() -> None:
    """At exit (``atexit``, registered by ``shared``): flush and close every handler, then
    empty logging's private list of them.

    Why: under eventlet a handler collected after the main greenlet began to finalize
    (jieba's own stderr handler, at interpreter shutdown) runs logging's clean-up, which
    takes logging's lock; the green lock needs the current greenlet's id and raises
    "greenlet is being finalized" at the end of every test run, benchmark and service
    stop. Why private: logging has no public way to drop its weak references to handlers;
    with the list empty, the clean-up returns without taking the lock."""
    logging.shutdown()
    logging._handlerList.clear()  # type: ignore[attr-defined]
