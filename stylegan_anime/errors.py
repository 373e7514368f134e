"""The one error type users see: a one-line message, exit code 2 on the CLI."""


class UserError(Exception):
    """Bad input from the user (a path, a value, a file's content).

    The message is one line that names the problem; the CLI prints it as
    ``error: <message>`` and exits with code 2, never with a traceback.
    """


def shown(value: object, limit: int = 200) -> str:
    """``value`` (often read from a file) as an error message shows it: ``repr`` cut to a few levels,
    eight items per container and ``limit`` characters, so that a value nested or repeated without
    end (a "billion laughs") can neither hang the message nor flood it."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset, r.maxfrozenset = 3, 8, 8, 8, 8, 8
    r.maxstring, r.maxother, r.maxlong = limit, limit, limit
    text = r.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
