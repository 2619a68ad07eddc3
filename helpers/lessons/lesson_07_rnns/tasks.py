"""Data and tasks of lesson 07 (recurrent networks), all offline.

- `load_sunspots()`: the yearly sunspot numbers 1700-2008 (data/sunspots.csv, public domain; see
  data/README.md), read with the standard library.
- `human_dates(n, seed)`: dates written the way people write them ("Tue 3 Mar 2026",
  "03/03/2026", "March 3, 2026", ...), made with Python's own `datetime`, each with its date.
- `CharVocab`: characters to token ids (0 is padding) for those strings.
"""

from __future__ import annotations

import calendar
import csv
import datetime
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

__all__ = ["load_sunspots", "MONTHS", "WEEKDAYS", "DATE_FORMATS", "human_dates", "CharVocab"]

DATA = Path(__file__).parent / "data"

# English names written out: calendar.month_name follows the locale, the task must not.
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def load_sunspots() -> tuple[torch.Tensor, torch.Tensor]:
    """(years, counts): int64 years 1700..2008 and float32 yearly sunspot numbers, both (309,)."""
    with (DATA / "sunspots.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    years = torch.tensor([int(float(row["YEAR"])) for row in rows])
    counts = torch.tensor([float(row["SUNACTIVITY"]) for row in rows], dtype=torch.float32)
    return years, counts


def _month(d: datetime.date) -> str:
    return MONTHS[d.month - 1]


def _weekday(d: datetime.date) -> str:
    return WEEKDAYS[calendar.weekday(d.year, d.month, d.day)]


DATE_FORMATS: tuple[Callable[[datetime.date], str], ...] = (
    lambda d: f"{d.day} {_month(d)} {d.year}",                      # 3 March 2026
    lambda d: f"{_month(d)} {d.day}, {d.year}",                     # March 3, 2026
    lambda d: f"{d.day} {_month(d)[:3]} {d.year}",                  # 3 Mar 2026
    lambda d: f"{_month(d)[:3]} {d.day} {d.year}",                  # Mar 3 2026
    lambda d: f"{_weekday(d)}, {d.day} {_month(d)} {d.year}",       # Tuesday, 3 March 2026
    lambda d: f"{_weekday(d)[:3]} {d.day} {_month(d)[:3]} {d.year}",  # Tue 3 Mar 2026
    lambda d: f"{d.day:02d}/{d.month:02d}/{d.year}",                # 03/03/2026 (day first)
    lambda d: f"{d.day}.{d.month}.{d.year}",                        # 3.3.2026
    lambda d: d.isoformat(),                                        # 2026-03-03
    lambda d: f"{d.day:02d}-{_month(d)[:3].upper()}-{d.year % 100:02d}",  # 03-MAR-26
)


def human_dates(n: int, seed: int = 0, first_year: int = 1950,
                last_year: int = 2049) -> list[tuple[str, datetime.date]]:
    """`n` (text, date) pairs: a random day between 1 January `first_year` and 31 December
    `last_year`, written in one of DATE_FORMATS drawn at random. The same seed gives the same list."""
    rng = random.Random(seed)
    start = datetime.date(first_year, 1, 1).toordinal()
    end = datetime.date(last_year, 12, 31).toordinal()
    pairs = []
    for _ in range(n):
        day = datetime.date.fromordinal(rng.randint(start, end))
        pairs.append((rng.choice(DATE_FORMATS)(day), day))
    return pairs


class CharVocab:
    """Characters <-> token ids; id 0 is padding, the characters get 1, 2, ... in sorted order."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.chars = sorted({c for text in texts for c in text})
        self.ids = {c: i + 1 for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        """The number of ids, padding included (the Embedding's num_embeddings)."""
        return len(self.chars) + 1

    def encode(self, text: str) -> torch.Tensor:
        """int64 ids of `text`, shape (len(text),); an unknown character raises KeyError."""
        return torch.tensor([self.ids[c] for c in text], dtype=torch.int64)

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        return "".join(self.chars[int(i) - 1] for i in ids if int(i) != 0)
