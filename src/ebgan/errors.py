"""One exception type for every user-facing mistake.

The CLI prints its message on one line and exits non-zero; library users catch it.
A message names the problem and the fix.
"""


class EbganError(Exception):
    """Bad input or a refused action, with a message a user can act on."""


def one_line(e: BaseException, limit: int = 200) -> str:
    """An exception's message on one line: torch's load_state_dict puts only a heading on its first
    line ("Error(s) in loading state_dict for Generator:") and the reasons (a missing key, a size
    mismatch) on the lines after it."""
    return " ".join(str(e).split())[:limit] or e.__class__.__name__
