"""Yahoo! R3 (Webscope, Marlin & Zemel 2009): music ratings, self-selected and randomly exposed.

``ydata-ymusic-rating-study-v1_0-train.txt`` holds ratings of songs users chose themselves (biased,
MNAR); ``ydata-ymusic-rating-study-v1_0-test.txt`` ratings of 10 songs shown to each of 5,400 users
at random. Both are tab-separated ``user_id  song_id  rating`` (1-based ids, ratings 1..5).

- train → ``rating`` events (the training data);
- test → ``eval/random_exposure_ratings`` (never training data).

There are no timestamps: every training event gets the fixed synthetic time :data:`YAHOO_R3_EPOCH`
(the study's year). The survey answers file is not mapped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from transforms.connectors.base import (
    RANDOM_EXPOSURE_TABLE,
    Connector,
    ConnectorError,
    Record,
    dumps,
    iso_ts,
    split_lines,
)

YAHOO_R3_EPOCH = dt.datetime(2009, 1, 1, tzinfo=dt.UTC)


class YahooR3Connector(Connector):
    format = "yahoo-r3"
    tables = ("events", RANDOM_EXPOSURE_TABLE)

    def records(self) -> Iterator[Record]:
        train = self.find("*train.txt")
        test = self.find("*test.txt")
        if not train and not test:
            raise ConnectorError(f"yahoo-r3: no ydata-ymusic-rating-study-v1_0-{{train,test}}.txt in {self.path}")
        ts = iso_ts(YAHOO_R3_EPOCH)
        for path in train:
            src = self.source_name(path)
            for no, fields, text in split_lines(path, "\t", 3):
                if fields is None:
                    yield Record("events", src, no, text)
                    continue
                user, item, rating = (f.strip() for f in fields)
                event = {"event_id": f"{self.name}:train:{user}:{item}", "user_id": user, "ts": ts, "event_type": "rating", "item_id": item, "value": rating}
                yield Record("events", src, no, dumps(event))
        for path in test:
            src = self.source_name(path)
            for no, fields, text in split_lines(path, "\t", 3):
                if fields is None:
                    yield Record(RANDOM_EXPOSURE_TABLE, src, no, text)
                    continue
                user, item, rating = (f.strip() for f in fields)
                yield Record(RANDOM_EXPOSURE_TABLE, src, no, dumps({"dataset": self.name, "user_id": user, "item_id": item, "rating": rating}))
