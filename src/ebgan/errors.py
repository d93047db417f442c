"""One exception type for every user-facing mistake.

The CLI prints its message on one line and exits non-zero; library users catch it.
A message names the problem and the fix.
"""


class EbganError(Exception):
    """Bad input or a refused action, with a message a user can act on."""
