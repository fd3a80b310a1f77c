"""Five-field cron expressions, read the way KEDA's `cron` scaler reads them.

KEDA (pkg/scalers/cron_scaler.go) parses `start` and `end` with robfig/cron v3's
`cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)`: exactly five fields,
no seconds and no descriptors (`@daily`, `@every 1h`); each field a comma list of `*`, `?`, `N` or
`N-M`, each optionally `/step`; month and weekday names (JAN..DEC, SUN..SAT) in any case; weekday
0..6 with 0 Sunday (robfig has no 7). Anything robfig refuses is refused here, so a window that
plans is a window KEDA accepts. `CronSchedule.matches` tells whether a minute fires (the simulation
reads it): robfig's rule that when both day fields are restricted either may match.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_MONTHS = {name: i + 1 for i, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
_DAYS = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# name, low, high, names
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day-of-month", 1, 31, {}),
           ("month", 1, 12, _MONTHS), ("day-of-week", 0, 6, _DAYS))


class CronError(ValueError):
    """What is wrong with an expression, in words a configuration error can end with."""


@dataclass(frozen=True)
class CronSchedule:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_any: bool  # the day-of-month field was * or ?
    weekdays_any: bool

    def matches(self, when: dt.datetime) -> bool:
        """Whether the expression fires at this minute (in the time zone `when` is in)."""
        if when.minute not in self.minutes or when.hour not in self.hours or when.month not in self.months:
            return False
        day_ok = when.day in self.days
        weekday_ok = (when.isoweekday() % 7) in self.weekdays
        # robfig/cron dayMatches: both restricted -> either; otherwise both must hold (one is '*').
        if self.days_any or self.weekdays_any:
            return day_ok and weekday_ok
        return day_ok or weekday_ok


def _number(token: str, field: str, low: int, high: int, names: dict[str, int]) -> int:
    value = names.get(token.lower())
    if value is None:
        if not token.isdigit():
            raise CronError(f"{field} {token!r} is not a number{' or a name' if names else ''}")
        value = int(token)
    if not low <= value <= high:
        raise CronError(f"{field} {value} is outside {low}-{high}")
    return value


def _field(text: str, field: str, low: int, high: int, names: dict[str, int]) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    star = False
    for part in text.split(","):
        if not part:
            raise CronError(f"{field} {text!r} has an empty list item")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{field} step {step_text!r} is not a whole number above 0")
            step = int(step_text)
        if base in ("*", "?"):
            start, end = low, high
            # robfig keeps its "star" bit for * and */1 only.
            star = star or step == 1
        elif "-" in base:
            first, _, last = base.partition("-")
            start = _number(first, field, low, high, names)
            end = _number(last, field, low, high, names)
            if start > end:
                raise CronError(f"{field} range {base!r} runs backwards")
        else:
            start = _number(base, field, low, high, names)
            # robfig: "N/step" runs from N to the field's end.
            end = high if slash else start
        values.update(range(start, end + 1, step))
    return frozenset(values), star


def parse_cron(text: str) -> CronSchedule:
    """Parse a five-field expression or raise CronError saying what is wrong."""
    fields = text.split()
    if text.strip().startswith("@"):
        raise CronError("descriptors such as @daily are not accepted by KEDA's cron scaler")
    if len(fields) != 5:
        raise CronError(f"it has {len(fields)} fields")
    parsed = [_field(f, name, low, high, names) for f, (name, low, high, names) in zip(fields, _FIELDS, strict=True)]
    return CronSchedule(text=text, minutes=parsed[0][0], hours=parsed[1][0], days=parsed[2][0], months=parsed[3][0],
                        weekdays=parsed[4][0], days_any=parsed[2][1], weekdays_any=parsed[4][1])
