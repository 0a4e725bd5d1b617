"""Retry a flaky call with exponential backoff; written for a test."""

import functools
import logging
import random
import time

log = logging.getLogger(__name__)


class GaveUp(Exception):
    """Raised when every attempt failed."""

    def __init__(self, attempts, last):
        super().__init__(f"gave up after {attempts} attempts: {last!r}")
        self.attempts = attempts
        self.last = last


def retry(attempts=5, base=0.1, cap=5.0, retry_on=(OSError,)):
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            last = None
            for attempt in range(1, attempts + 1):
                try:
                    return fn(*args, **kwargs)
                except retry_on as exc:
                    last = exc
                    delay = random.uniform(0, min(cap, base * 2 ** attempt))
                    log.warning("attempt %d failed (%s); sleeping %.2fs", attempt, exc, delay)
                    time.sleep(delay)
            raise GaveUp(attempts, last)

        return wrapper

    return decorate


@retry(attempts=3, retry_on=(ConnectionError,))
def fetch(url):
    import urllib.request

    with urllib.request.urlopen(url, timeout=2) as response:
        return response.read()


if __name__ == "__main__":
    print(len(fetch("http://127.0.0.1:8000/")))
