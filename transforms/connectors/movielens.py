"""MovieLens: ml-100k (``u.data``, ``u.item``, ``u.user``), ml-1m / ml-10m (``::`` ``.dat``), ml-latest (CSV).

Ratings become ``rating`` events (value = the rating) *and* reviews (rating, no text); ml-latest and
ml-10m tags become reviews with the tag as text. Movies become items (title, genres, year), users
become users (age, gender, occupation, zip code as attributes).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from transforms.connectors.base import (
    Connector,
    ConnectorError,
    Record,
    dumps,
    iso_from_epoch,
    iter_lines,
    split_lines,
    stable_id,
    without_nulls,
)

# The 19 genre flags of u.item, in column order (ml-100k's u.genre).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
NO_GENRES = "(no genres listed)"
_YEAR = re.compile(r"\((\d{4})\)\s*$")
# ml-100k and ml-1m/10m files are Latin-1 (accented titles); ml-latest CSVs are UTF-8.
LEGACY_ENCODING = "latin-1"


class MovieLensConnector(Connector):
    format = "movielens"
    tables = ("events", "reviews", "items", "users")

    def records(self) -> Iterator[Record]:
        plan: list[tuple[Path, str]] = []
        plan += [(p, "ratings_100k") for p in self.find("u.data")]
        plan += [(p, "ratings_dat") for p in self.find("ratings*.dat")]
        plan += [(p, "ratings_csv") for p in self.find("ratings.csv")]
        plan += [(p, "tags_dat") for p in self.find("tags.dat")]
        plan += [(p, "tags_csv") for p in self.find("tags.csv")]
        plan += [(p, "items_100k") for p in self.find("u.item")]
        plan += [(p, "movies_dat") for p in self.find("movies.dat")]
        plan += [(p, "movies_csv") for p in self.find("movies.csv")]
        plan += [(p, "users_100k") for p in self.find("u.user")]
        plan += [(p, "users_dat") for p in self.find("users.dat")]
        if not plan:
            raise ConnectorError(
                f"movielens: no MovieLens files in {self.path} (expected u.data/u.item/u.user, "
                "ratings.dat/movies.dat/users.dat or ratings.csv/movies.csv/tags.csv)"
            )
        for path, kind in plan:
            yield from getattr(self, f"_{kind}")(path)

    # --- ratings -----------------------------------------------------------------------------------

    def _rating(self, src: str, no: int, fields: list[str]) -> Iterator[Record]:
        user, item, rating, stamp = fields
        ts = iso_from_epoch(stamp) or stamp
        key = f"{self.name}:{user}:{item}"
        yield Record(
            "events",
            src,
            no,
            dumps({"event_id": key, "user_id": user, "ts": ts, "event_type": "rating", "item_id": item, "value": rating}),
        )
        yield Record(
            "reviews", src, no, dumps({"review_id": key, "user_id": user, "item_id": item, "ts": ts, "rating": rating})
        )

    def _split_rows(self, path: Path, sep: str, width: int, encoding: str) -> Iterator[tuple[str, int, list[str] | None, str]]:
        src = self.source_name(path)
        for no, fields, text in split_lines(path, sep, width, encoding):
            yield src, no, fields, text

    def _ratings_100k(self, path: Path) -> Iterator[Record]:
        for src, no, fields, text in self._split_rows(path, "\t", 4, LEGACY_ENCODING):
            yield from self._rating(src, no, fields) if fields else [Record("events", src, no, text)]

    def _ratings_dat(self, path: Path) -> Iterator[Record]:
        for src, no, fields, text in self._split_rows(path, "::", 4, LEGACY_ENCODING):
            yield from self._rating(src, no, fields) if fields else [Record("events", src, no, text)]

    def _ratings_csv(self, path: Path) -> Iterator[Record]:
        for src, no, row, text in self._csv_rows(path, ("userId", "movieId", "rating", "timestamp")):
            yield from self._rating(src, no, row) if row else [Record("events", src, no, text)]

    # --- tags --------------------------------------------------------------------------------------

    def _tag(self, src: str, no: int, fields: list[str]) -> Record:
        user, item, tag, stamp = fields
        ts = iso_from_epoch(stamp) or stamp
        review_id = f"{self.name}:tag:{user}:{item}:{stamp}:{stable_id(tag)[:8]}"
        return Record("reviews", src, no, dumps({"review_id": review_id, "user_id": user, "item_id": item, "ts": ts, "text": tag}))

    def _tags_dat(self, path: Path) -> Iterator[Record]:
        for src, no, fields, text in self._split_rows(path, "::", 4, LEGACY_ENCODING):
            yield self._tag(src, no, fields) if fields else Record("reviews", src, no, text)

    def _tags_csv(self, path: Path) -> Iterator[Record]:
        for src, no, row, text in self._csv_rows(path, ("userId", "movieId", "tag", "timestamp")):
            yield self._tag(src, no, row) if row else Record("reviews", src, no, text)

    # --- movies ------------------------------------------------------------------------------------

    def _movie(self, src: str, no: int, item: str, title: str, genres: list[str], extra: Mapping[str, Any]) -> Record:
        match = _YEAR.search(title)
        attributes = without_nulls({"year": int(match.group(1)) if match else None, **extra})
        row = without_nulls({"item_id": item, "title": title.strip(), "categories": genres, "attributes": attributes})
        return Record("items", src, no, dumps(row))

    def _items_100k(self, path: Path) -> Iterator[Record]:
        for src, no, fields, text in self._split_rows(path, "|", 5 + len(ML100K_GENRES), LEGACY_ENCODING):
            if fields is None or any(flag not in ("0", "1") for flag in fields[5:]):
                yield Record("items", src, no, text)
                continue
            genres = [g for g, flag in zip(ML100K_GENRES, fields[5:], strict=True) if flag == "1"]
            extra = {"release_date": fields[2], "video_release_date": fields[3], "imdb_url": fields[4]}
            yield self._movie(src, no, fields[0], fields[1], genres, extra)

    def _movies_dat(self, path: Path) -> Iterator[Record]:
        for src, no, fields, text in self._split_rows(path, "::", 3, LEGACY_ENCODING):
            if fields is None:
                yield Record("items", src, no, text)
                continue
            yield self._movie(src, no, fields[0], fields[1], _genres(fields[2]), {})

    def _movies_csv(self, path: Path) -> Iterator[Record]:
        for src, no, row, text in self._csv_rows(path, ("movieId", "title", "genres")):
            yield self._movie(src, no, row[0], row[1], _genres(row[2]), {}) if row else Record("items", src, no, text)

    # --- users -------------------------------------------------------------------------------------

    def _users_100k(self, path: Path) -> Iterator[Record]:
        for src, no, fields, text in self._split_rows(path, "|", 5, LEGACY_ENCODING):
            if fields is None:
                yield Record("users", src, no, text)
                continue
            user, age, gender, occupation, zip_code = fields
            attributes = {"age": int(age) if age.isdigit() else age, "gender": gender, "occupation": occupation, "zip_code": zip_code}
            yield Record("users", src, no, dumps({"user_id": user, "attributes": without_nulls(attributes)}))

    def _users_dat(self, path: Path) -> Iterator[Record]:
        # ml-1m: UserID::Gender::Age::Occupation::Zip-code; age and occupation are codes (see its README).
        for src, no, fields, text in self._split_rows(path, "::", 5, LEGACY_ENCODING):
            if fields is None:
                yield Record("users", src, no, text)
                continue
            user, gender, age, occupation, zip_code = fields
            attributes = {"gender": gender, "age_group": age, "occupation_code": occupation, "zip_code": zip_code}
            yield Record("users", src, no, dumps({"user_id": user, "attributes": without_nulls(attributes)}))

    # --- CSV (ml-latest) ---------------------------------------------------------------------------

    def _csv_rows(self, path: Path, header: tuple[str, ...]) -> Iterator[tuple[str, int, list[str] | None, str]]:
        src = self.source_name(path)
        lines = iter_lines(path, "utf-8")
        first = next(lines, None)
        if first is None:
            return
        got = next(csv.reader([first[1]]))
        if tuple(got) != header:
            raise ConnectorError(f"movielens: {path} has header {got}, expected {list(header)}")
        for no, text in lines:
            try:
                fields = next(csv.reader(io.StringIO(text)))
            except (csv.Error, StopIteration):
                fields = []
            yield src, no, (fields if len(fields) == len(header) else None), text


def _genres(text: str) -> list[str]:
    return [g for g in text.split("|") if g and g != NO_GENRES]
