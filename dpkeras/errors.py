"""One exception type for every user-facing error.

Every message names the offending file, key or value and says how to fix it. The command-line
entry points catch :class:`DPKerasError` and print its message on one line instead of a traceback.
"""


class DPKerasError(Exception):
    """A user-facing error whose message is complete on its own (no traceback needed)."""
