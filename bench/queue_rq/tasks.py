"""The job bench/queue gives rq: it does nothing, like StreamGate's `noop` job kind."""


def noop():
    return None
