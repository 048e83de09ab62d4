"""The one exception type the CLI turns into a one-line message and a non-zero exit, and the
one way every layer turns an exception into a line (records, check results, Hub errors)."""


class OnionbenchError(Exception):
    """A problem the user can fix; the message says how."""


def first_line(err: BaseException, fallback: str = "") -> str:
    """The first non-empty line of an error's message, stripped; `fallback` when it has none.

    Why one helper: an exception's text can span pages (a Hub response, a torch shape
    dump), and a record, a check result or a CLI message keeps one line of it.
    """
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else fallback


def one_line(err: BaseException, limit: int = 500) -> str:
    """`first_line`, prefixed by the error's type unless it is one of ours (whose message is
    written for the user), at most `limit` characters: what a failed record keeps."""
    text = first_line(err)
    return (text if isinstance(err, OnionbenchError) else f"{type(err).__name__}: {text}")[:limit]
