"""`RepeatedLines`: one log line for a message that repeats, then a count, not a line each.

A refusal or a soft server error can come once per record, thousands a second; the relay says
each distinct text at once, the same text again at most once per interval with how many went
unsaid, and a text that gives way to another gets its count on a line of its own, so a count
is never read as belonging to the wrong text.
"""

from __future__ import annotations

import math

import attrs


@attrs.frozen
class Verdict:
    say: bool
    """Log this occurrence now."""
    repeats: int
    """Occurrences of the same text left unsaid since its last line (to append to this one)."""
    earlier: tuple[str, int] | None
    """A different previous text and its unsaid count: say it on a line of its own first."""


class RepeatedLines:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._text = ""
        self._said_at = -math.inf
        self._unsaid = 0

    def check(self, text: str, now: float, *, always: bool = False) -> Verdict:
        """What to log for one occurrence of `text` at `now` (`always`: say it regardless)."""
        if text == self._text and now - self._said_at < self.interval and not always:
            self._unsaid += 1
            return Verdict(False, 0, None)
        if text == self._text:
            verdict = Verdict(True, self._unsaid, None)
        else:
            earlier = (self._text, self._unsaid) if self._unsaid else None
            verdict = Verdict(True, 0, earlier)
        self._text, self._said_at, self._unsaid = text, now, 0
        return verdict
