"""When a fact was true, from the words that say so, resolved by code against the date the words were said.

The model only copies the words ("last Saturday", "in 2019", "two weeks ago"); this module turns them into a range of
days, so a date is never guessed by the model. A range is ``[start, end)`` in days: "last Saturday" said on Monday
8 May 2023 is 6 May (6 to 7 May), "next month" is June 2023, "in 2019" the whole year, "since 2019" starts in 2019
and has no end. Rules, written down so a reader can check a resolution by hand:

- Weeks run Monday to Sunday; "last week" is the one before the anchor's, a weekend its Saturday and Sunday, and
  "last weekend" the one of the week before the anchor's.
- "last Friday" is the latest Friday before the anchor day, "next Friday" the first one after it, "this Friday" the
  one of the anchor's week.
- "N days ago" is a day; "N weeks ago" the week holding the day 7·N days back; months and years likewise.
- Seasons are the northern meteorological ones (spring March–May, summer June–August, autumn September–November,
  winter December–February, named by the year of its December). "last summer" is the latest that ended before the
  anchor, "this summer" the anchor year's, "next summer" the first that starts after it.
- "last May" is the latest May that ended before the anchor, "next May" the first that starts after it; a month or
  a day without a year is in the anchor's year; "early", "mid" and "late" a month are its days 1–10,
  11–20 and 21 to its end.
- Vague words ("recently", "the other day", a bare weekday) resolve to nothing: unknown is better than wrong.

Parsing a written date ("8 May 2023", "May 8th", "2023-05-08") is left to ``dateutil``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dateutil import parser as date_parser
from dateutil.relativedelta import relativedelta

WORDS_CHARS = 60  # the words kept with a resolved range


@dataclass(frozen=True)
class When:
    """A range of days ``[start, end)`` (either end may be open), and the words it was resolved from."""

    start: date | None
    end: date | None
    words: str

    def at(self) -> tuple[datetime | None, datetime | None]:
        """The range as midnight times (naive: the day of the conversation, whatever its zone)."""
        return (datetime.combine(self.start, datetime.min.time()) if self.start else None,
                datetime.combine(self.end, datetime.min.time()) if self.end else None)


MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS |= {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name} | {"sept": 9}
WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
           "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a couple of": 2, "a few": 3, "several": 3}
SEASONS = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}  # the month each starts
UNITS = r"(day|week|weekend|month|year)s?"

_MONTH = r"(?:" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAY = r"(?:" + "|".join(WEEKDAYS) + r")"
_SEASON = r"(?:" + "|".join(SEASONS) + r")"
_NUMBER = r"(?:\d{1,3}|" + "|".join(sorted(NUMBERS, key=len, reverse=True)) + r")"
_ORD = r"(?:st|nd|rd|th)?"
_YEAR = r"(?:1[89]\d\d|20\d\d)"
_DAY_MONTH = rf"\d{{1,2}}{_ORD}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?"
_MONTH_DAY = rf"{_MONTH}\s+\d{{1,2}}{_ORD}(?:,?\s+{_YEAR})?"
_ISO = r"\d{4}-\d{2}-\d{2}"
_DATE = rf"(?:{_ISO}|{_DAY_MONTH}|{_MONTH_DAY})"


def _day(d: date) -> tuple[date, date]:
    return d, d + timedelta(days=1)


def _week_of(d: date) -> tuple[date, date]:
    monday = d - timedelta(days=d.weekday())
    return monday, monday + timedelta(days=7)


def _weekend_of(d: date) -> tuple[date, date]:
    saturday = _week_of(d)[0] + timedelta(days=5)
    return saturday, saturday + timedelta(days=2)


def _month(year: int, month: int) -> tuple[date, date]:
    start = date(year, month, 1)
    return start, start + relativedelta(months=1)


def _year(year: int) -> tuple[date, date]:
    return date(year, 1, 1), date(year + 1, 1, 1)


def _season(year: int, name: str) -> tuple[date, date]:
    """The season ``name`` of ``year``; winter is the one that starts in that year's December."""
    start = date(year, SEASONS[name], 1)
    return start, start + relativedelta(months=3)


def _number(text: str) -> int:
    text = " ".join(text.lower().split())
    return int(text) if text.isdigit() else NUMBERS[text]


def _shift(anchor: date, unit: str, n: int) -> tuple[date, date]:
    """The day, week, weekend, month or year ``n`` of them from the anchor's (negative: back)."""
    if unit == "day":
        return _day(anchor + timedelta(days=n))
    if unit == "week":
        return _week_of(anchor + timedelta(weeks=n))
    if unit == "weekend":
        return _weekend_of(anchor + timedelta(weeks=n))
    if unit == "month":
        moved = anchor + relativedelta(months=n)
        return _month(moved.year, moved.month)
    return _year(anchor.year + n)


def _relative_weekday(anchor: date, which: str, weekday: str) -> tuple[date, date]:
    target = WEEKDAYS[weekday.lower()]
    if which in ("last", "this past", "past"):
        back = (anchor.weekday() - target) % 7 or 7
        return _day(anchor - timedelta(days=back))
    if which == "next":
        ahead = (target - anchor.weekday()) % 7 or 7
        return _day(anchor + timedelta(days=ahead))
    return _day(_week_of(anchor)[0] + timedelta(days=target))  # this <weekday>: of the anchor's week


def _relative_season(anchor: date, which: str, name: str) -> tuple[date, date]:
    if which == "this":  # the anchor year's; in January and February, this winter began the December before
        return _season(anchor.year - 1 if name == "winter" and anchor.month <= 2 else anchor.year, name)
    candidates = [_season(year, name) for year in range(anchor.year - 2, anchor.year + 2)]
    if which == "next":
        return next(s for s in candidates if s[0] > anchor)
    return [s for s in candidates if s[1] <= anchor][-1]  # last: the latest that ended before the anchor


def _relative_month(anchor: date, which: str, month: int) -> tuple[date, date]:
    """"last May" is the latest May that ended before the anchor, "next May" the first that starts after it."""
    if which == "this":
        return _month(anchor.year, month)
    candidates = [_month(year, month) for year in range(anchor.year - 1, anchor.year + 2)]
    if which == "next":
        return next(s for s in candidates if s[0] > anchor)
    return [s for s in candidates if s[1] <= anchor][-1]


def _written_date(text: str, anchor: date) -> tuple[date, date]:
    cleaned = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text, flags=re.I).replace(" of ", " ")
    default = datetime.combine(anchor.replace(day=1), datetime.min.time())
    return _day(date_parser.parse(cleaned, default=default).date())


def _month_part(anchor: date, part: str, month: str, year: str | None) -> tuple[date, date]:
    start, end = _month(int(year) if year else anchor.year, MONTHS[month.lower().rstrip(".")])
    first, last = {"early": (1, 11), "mid": (11, 21)}.get(part.lower(), (21, None))
    return start.replace(day=first), start.replace(day=last) if last else end


Span = tuple[date, date]
Rule = tuple[re.Pattern[str], Callable[[re.Match[str], date], Span]]


def _rule(pattern: str, resolve: Callable[[re.Match[str], date], Span]) -> Rule:
    return re.compile(r"(?<![\w-])" + pattern + r"(?![\w-])", re.I), resolve


def _which(m: re.Match[str], name: str = "which") -> str:
    return " ".join(m[name].lower().split())


_SEASON_WHICH = {"this past": "last", "past": "last", "previous": "last", "coming": "next"}
_UNIT_STEP = {"last": -1, "past": -1, "previous": -1, "this": 0, "next": 1, "following": 1}

# Longest and most specific first: the first rule that matches in a text wins.
RULES: list[Rule] = [
    _rule(r"the\s+day\s+before\s+yesterday", lambda m, a: _day(a - timedelta(days=2))),
    _rule(r"the\s+day\s+after\s+tomorrow", lambda m, a: _day(a + timedelta(days=2))),
    _rule(r"the\s+(?P<unit>week|weekend|month|year)\s+before\s+last",
          lambda m, a: _shift(a, m["unit"].lower(), -2)),
    _rule(r"the\s+(?P<unit>week|weekend|month|year)\s+after\s+next", lambda m, a: _shift(a, m["unit"].lower(), 2)),
    _rule(r"(?P<n>" + _NUMBER + r")\s+" + UNITS.replace("(", "(?P<unit>", 1) + r"\s+(?:ago|back|earlier|before)",
          lambda m, a: _shift(a, m["unit"].lower(), -_number(m["n"]))),
    _rule(r"in\s+(?P<n>" + _NUMBER + r")\s+" + UNITS.replace("(", "(?P<unit>", 1)
          + r"(?:\s+time)?|(?P<n2>" + _NUMBER + r")\s+" + UNITS.replace("(", "(?P<unit2>", 1) + r"\s+from\s+now",
          lambda m, a: _shift(a, (m["unit"] or m["unit2"]).lower(), _number(m["n"] or m["n2"]))),
    _rule(r"the\s+(?P<unit>week|weekend|month|year)\s+(?P<side>before|after)",
          lambda m, a: _shift(a, m["unit"].lower(), -1 if m["side"].lower() == "before" else 1)),
    _rule(rf"(?P<which>this\s+past|last|next|this|past)\s+(?P<day>{_WEEKDAY})",
          lambda m, a: _relative_weekday(a, _which(m), m["day"])),
    _rule(rf"(?P<which>this\s+past|last|next|this|past|previous|coming)\s+(?P<season>{_SEASON})",
          lambda m, a: _relative_season(a, _SEASON_WHICH.get(_which(m), _which(m)), m["season"].lower())),
    _rule(rf"(?P<which>last|next|this)\s+(?P<month>{_MONTH})(?![\w-])",
          lambda m, a: _relative_month(a, _which(m), MONTHS[m["month"].lower().rstrip(".")])),
    _rule(r"(?P<which>last|this|next|past|previous|following)\s+(?P<unit>week|weekend|month|year)",
          lambda m, a: _shift(a, m["unit"].lower(), _UNIT_STEP[_which(m)])),
    _rule(r"(?P<which>yesterday|last\s+night|today|tonight|this\s+(?:morning|afternoon|evening)|earlier\s+today|"
          r"tomorrow)",
          lambda m, a: _day(a + timedelta(days={"yesterday": -1, "last night": -1, "tomorrow": 1}.get(_which(m), 0)))),
    _rule(rf"(?P<part>early|mid|late)[\s-]+(?P<month>{_MONTH})(?:,?\s+(?P<year>{_YEAR}))?",
          lambda m, a: _month_part(a, m["part"], m["month"], m["year"])),
    _rule(_DATE, lambda m, a: _written_date(m[0], a)),
    _rule(rf"(?P<month>{_MONTH})(?:\s+of)?,?\s+(?P<year>{_YEAR})",
          lambda m, a: _month(int(m["year"]), MONTHS[m["month"].lower().rstrip(".")])),
    _rule(rf"(?:the\s+)?(?P<season>{_SEASON})\s+(?:of\s+)?(?P<year>{_YEAR})",
          lambda m, a: _season(int(m["year"]), m["season"].lower())),
    _rule(rf"(?:in|during|since|from|until|till|by|of|back\s+in|around)\s+(?P<month>{_MONTH})(?![\w-])",
          lambda m, a: _month(a.year, MONTHS[m["month"].lower().rstrip(".")])),
    _rule(r"(?:in\s+)?the\s+(?P<decade>(?:19|20)?\d0)'?s",
          lambda m, a: (_decade(m["decade"], a), _decade(m["decade"], a) + relativedelta(years=10))),
    _rule(rf"(?:in|during|since|from|until|till|by|of|back\s+in|around|year)\s+(?P<year>{_YEAR})",
          lambda m, a: _year(int(m["year"]))),
]


def _decade(text: str, anchor: date) -> date:
    year = int(text)
    if year < 100:  # "the 90s": the latest such decade not after the anchor
        year += 1900 if 1900 + year + 100 <= anchor.year else 2000
        if year > anchor.year:
            year -= 100
    return date(year, 1, 1)


_OPEN = r"(?P<side>since|starting(?:\s+in|\s+on)?|from|until|till|up\s+to|through)\s+"
_OPEN_BEFORE = re.compile(r"(?<![\w-])" + _OPEN + r"$", re.I)
_OPEN_INSIDE = re.compile(r"^" + _OPEN, re.I)


def _side(text: str, m: re.Match[str]) -> tuple[str | None, int]:
    """since, until or from, when the words open or close the range (the preposition may sit inside the match or
    just before it), and where the words begin."""
    o = _OPEN_BEFORE.search(text[:m.start()])
    begin = o.start() if o else m.start()
    o = o or _OPEN_INSIDE.match(m[0])
    if o is None:
        return None, begin
    side = o["side"].lower().split()[0]
    return {"starting": "since", "till": "until", "up": "until", "through": "until"}.get(side, side), begin


def _found(text: str, anchor: date) -> tuple[re.Match[str], Span] | None:
    best: tuple[re.Match[str], Span] | None = None
    for pattern, resolve in RULES:
        m = pattern.search(text)
        if m is None or (best is not None and m.start() >= best[0].start()):
            continue
        try:
            best = m, resolve(m, anchor)
        except (ValueError, OverflowError, KeyError, StopIteration, IndexError):
            continue  # "31 February": no such day
    return best


def find_when(text: str | None, anchor: date) -> When | None:
    """The first time expression in ``text`` resolved against ``anchor`` (the day it was said), or ``None``.
    "since X" keeps X's start and no end; "until X" ends where X ends, with no start; "from X to Y" spans both."""
    if not text:
        return None
    found = _found(text, anchor)
    if found is None:
        return None
    m, (start, end) = found
    side, begin = _side(text, m)
    finish = m.end()
    span_start: date | None = start
    span_end: date | None = end
    if side == "since":
        span_end = None
    elif side == "until":
        span_start = None
    elif side == "from":
        rest = re.match(r"\s*(?:to|until|till|through|-)\s+", text[m.end():], re.I)
        tail = text[m.end() + rest.end():] if rest else ""
        year = re.match(_YEAR + r"(?![\w-])", tail)
        if year:  # "from 2010 until 2014": the second year stands alone
            span_end, finish = _year(int(year[0]))[1], m.end() + rest.end() + year.end()  # type: ignore[union-attr]
        elif rest and (later := _found(tail, anchor)) is not None and later[0].start() == 0:
            span_end = later[1][1]
            finish = m.end() + rest.end() + later[0].end()
    return When(start=span_start, end=span_end, words=" ".join(text[begin:finish].split())[:WORDS_CHARS])
