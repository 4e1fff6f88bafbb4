"""Small made-up files in the layouts of public datasets, written at test time for the connector tests.

The connectors find a dataset's files by their published names (``u.data``, ``reviews_<Category>_5.json``,
``train.ascii``, ...), so the tests need files of those names. Their contents here are synthetic (ids like
``AFIXTUREREV001``, a handful of rows, with broken lines on purpose to exercise quarantine): no row comes from a
dataset. They live in this module rather than as tracked files so that no file of the repository carries a public
dataset's name; ``connector_root()`` writes them into a temporary folder once per test process.

Our own formats (``tabular``: a CSV or JSON Lines file and its mapping) stay as files in ``tests/fixtures``.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

LATIN1 = {"movielens/ml-1m/movies.dat"}  # MovieLens 1M's titles are Latin-1, not UTF-8

FILES: dict[str, str] = {
    "amazon/2014/meta_Musical_Instruments.json": """\
{'asin': 'B0FIXMIC01', 'title': 'Mesh Screen', 'price': 12.99, 'brand': 'Fixture Audio', 'categories': [['Musical Instruments', 'Microphones & Accessories', 'Mesh Screens']], 'salesRank': {'Musical Instruments': 1000}}
{'asin': 'B0FIXSTR02', 'description': "Fixture strings, 'light' gauge", 'categories': [['Musical Instruments'], ['Musical Instruments', 'Strings']]}
{'asin': 'B0FIXSTR02' 'title': 'missing comma'}
""",
    "amazon/2014/reviews_Musical_Instruments_5.json": """\
{"reviewerID": "AFIXTUREREV001", "asin": "B0FIXMIC01", "reviewerName": "fixture reviewer", "helpful": [0, 0], "reviewText": "Keeps the plosives off the take.", "overall": 5.0, "summary": "steady", "unixReviewTime": 1055808000, "reviewTime": "06 17, 2003"}
{"reviewerID": "AFIXTUREREV002", "asin": "B0FIXMIC01", "helpful": [7, 9], "reviewText": "Works as described.", "overall": 5.0, "summary": "Fine", "unixReviewTime": 1042588800, "reviewTime": "01 15, 2003"}
{"reviewerID": "AFIXTUREREV003", "asin": "B0FIXMIC01", "helpful": [1, 1], "reviewText": "A line cut off in the midd
""",
    "amazon/2018/Gift_Cards_5.json": """\
{"overall": 5.0, "verified": true, "reviewTime": "08 01, 2018", "reviewerID": "AFIXTUREGC0001", "asin": "B0FIXGIFT1", "style": {"Gift Amount:": " 40"}, "reviewerName": "fixture buyer", "reviewText": "A fine gift.", "summary": "Well received", "unixReviewTime": 1533081600}
{"overall": 4.0, "vote": "1,087", "verified": true, "reviewTime": "07 25, 2018", "reviewerID": "AFIXTUREGC0002", "asin": "B0FIXGIFT1", "reviewText": "A card for a birthday", "summary": "Simple to send", "unixReviewTime": 1532476800}
{"overall": 5.0, "verified": true, "reviewTime": "08 01, 2018", "reviewerID": "AFIXTUREGC0001", "asin": "B0FIXGIFT1", "style": {"Gift Amount:": " 40"}, "reviewerName": "fixture buyer", "reviewText": "A fine gift.", "summary": "Well received", "unixReviewTime": 1533081600}
{"overall": 5.0, "reviewTime": "03 15, 2003", "reviewerID": "AFIXTUREGC0001", "asin": "B0FIXGIFT1", "style": {"Gift Amount:": " 15"}, "reviewText": "Bought another one.", "summary": "Again", "unixReviewTime": 1047686400}
{"overall": 5.0, "reviewerID": "A1NO0ASIN", "reviewText": "no asin", "unixReviewTime": 1047686400}
""",
    "amazon/2018/meta_Gift_Cards.json": """\
{"category": ["Gift Cards", "Gift Cards"], "description": ["<b>Use</b> in any shop &amp; online.", "<br>Never expires."], "title": "<span class=\\"a-size-large\\">Fixture Gift Card</span>", "brand": "Fixture", "price": "$50.00", "main_cat": "Gift Cards", "asin": "B0FIXGIFT1"}
{"category": ["Gift Cards", "Gift Cards"], "description": ["<b>Use</b> in any shop &amp; online.", "<br>Never expires."], "title": "<span class=\\"a-size-large\\">Fixture Gift Card</span>", "brand": "Fixture", "price": "$50.00", "main_cat": "Gift Cards", "asin": "B0FIXGIFT1"}
{"category": [], "title": "Card", "price": "$10.00 - $20.00", "asin": "B00ABCDEFG"}
""",
    "amazon/2023/All_Beauty.jsonl": """\
{"rating": 5.0, "title": "Made-up title", "text": "A made-up review.", "images": [], "asin": "B0FIXTURE01", "parent_asin": "B0FIXTURE01", "user_id": "AFIXTUREUSER00000000000000001", "timestamp": 1588687728923, "helpful_vote": 0, "verified_purchase": true}
{"rating": 4.0, "title": "Works", "text": "Smells good.", "images": [], "asin": "B0FIXTURE02", "parent_asin": "B0FIXTURE02", "user_id": "AFIXTUREUSER00000000000000001", "timestamp": 1588615855070, "helpful_vote": 1, "verified_purchase": true}
{"rating": 7.0, "title": "Off the scale", "text": "", "asin": "B0000", "parent_asin": "B0000", "user_id": "AE", "timestamp": 1588615855070, "helpful_vote": 0}
""",
    "amazon/2023/meta_All_Beauty.jsonl": """\
{"main_category": "All Beauty", "title": "Fixture Leather Conditioner", "average_rating": 4.8, "rating_number": 10, "features": [], "description": ["Keeps leather soft"], "price": 8.5, "images": [], "store": "Fixture Products", "categories": ["Beauty", "Skin Care"], "details": {"Brand": "Fixture"}, "parent_asin": "B0FIXTURE01"}
{"main_category": "All Beauty", "title": "Spray", "price": null, "store": null, "categories": [], "parent_asin": "B0FIXTURE02"}
""",
    "coat/propensities.ascii": """\
0.1 0.2 0.3 0.4
0.5 0.6 0.7 0.8
0.9 1.0 0.05 0.06
""",
    "coat/test.ascii": """\
1 0 0 0
0 0 5 0
0 2 0 0
""",
    "coat/train.ascii": """\
0 3 0 5
4 0 0 0
0 0 2 x
""",
    "coat/user_item_features/item_features.ascii": """\
1 0
0 1
1 0
0 1
""",
    "coat/user_item_features/item_features_map.txt": """\
colour:red
colour:blue
""",
    "coat/user_item_features/user_features.ascii": """\
1 0 1 0
0 1 0 1
0 1 1 0
""",
    "coat/user_item_features/user_features_map.txt": """\
region:north
region:south
band:a
band:b
""",
    "diginetica/product-categories.csv": """\
itemId;categoryId
9001;42
9002;42
9003
""",
    "diginetica/train-item-views.csv": """\
sessionId;userId;itemId;timeframe;eventdate
41;NA;9001;512345;2016-03-14
41;NA;9002;1020406;2016-03-14
42;777;9003;0;2016-03-11
43;NA;1
""",
    "diginetica/train-purchases.csv": """\
sessionId;userId;timeframe;eventdate;ordernumber;itemId
87;777;17055512;2016-03-11;16001;9004
88;NA;6400120;not-a-date;16002;9005
""",
    "mind/behaviors.tsv": """\
1\tU90001\t11/11/2019 9:07:21 AM\tN90004 N90005\tN90006-1 N90007-0
2\tU90002\t11/12/2019 6:11:30 PM\tN90008\tN90009-0 N90010-0 N90011-1
3\tU90001\t11/13/2019 8:00:00 AM\tN90004 N90005\tN90001-0
4\tU90003\tnot a time\t\tN90002-0
5\tU90004
""",
    "mind/news.tsv": """\
N90001\tlifestyle\tlifestylefixture\tThe Notebooks a Lighthouse Keeper Loves\tShop the notebooks.\thttps://assets.msn.com/labs/mind/FIXTUR1.html\t[]\t[]
N90002\thealth\tweightloss\tTen Habits Worth Dropping\tSmall habits, large effects.\thttps://assets.msn.com/labs/mind/FIXTUR2.html\t[]\t[]
N90003\tnews\tnewsworld\tThe Cost of a Delayed Budget
""",
    "movielens/ml-100k/u.data": """\
7\t1\t3\t881251234
8\t2\t3\t891718003
7\t1\t3\t881251234
9\t3
10\t4\t9\t880611111
11\t5\t1\tyesterday
""",
    "movielens/ml-100k/u.item": """\
1|Quiet Harbor (1996)|24-Jan-1997||http://example.org/quiet-harbor|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0
2|Night City Files (1997)|01-Jan-1997||http://example.org/night-city-files|0|0|0|0|0|0|1|0|0|0|1|0|0|1|0|0|1|0|0
3|Summer Camp Rivals (1994)|01-Jan-1994
""",
    "movielens/ml-100k/u.user": """\
7|49|M|writer|12345
8|39|F|executive|00000
9|25|M
""",
    "movielens/ml-1m/movies.dat": """\
3001::Lighthouse Keepers (1975)::Drama
3002::The Paper Giraffe (1996)::Animation|Children's|Musical
3003::Café Society (1995)::Comedy|Romance
""",
    "movielens/ml-1m/ratings.dat": """\
5001::3001::5::978300905
5001::3002::3::978302250
5002::3001::x::978298540
5001::3002
""",
    "movielens/ml-1m/users.dat": """\
5001::M::25::4::10001
5002::F::35::7::10002
""",
    "movielens/ml-latest/movies.csv": """\
movieId,title,genres
1,Paper Lanterns (1995),Adventure|Animation|Children|Comedy|Fantasy
3,"Quiet President, The (1995)",Comedy|Drama|Romance
4,Unknown Film,(no genres listed)
""",
    "movielens/ml-latest/ratings.csv": """\
userId,movieId,rating,timestamp
1,1,4.0,964900003
1,3,4.5,964900001
2,1,not-a-rating,964900002
""",
    "movielens/ml-latest/tags.csv": """\
userId,movieId,tag,timestamp
2,1,animated,1445700001
2,3,"warm, clever",1445700002
2,1
""",
    "obd/bts/men/item_context.csv": """\
,item_id,item_feature_0,item_feature_1
0,0,-0.55,k1
1,1,-0.61,k2
""",
    "obd/bts/men/men.csv": """\
,timestamp,item_id,position,click,propensity_score,user_feature_0,user_feature_1,user_feature_2,user_feature_3,user-item_affinity_0,user-item_affinity_1
0,2019-11-24 00:01:31.604512+00:00,0,1,1,0.0238,f,g,h,i,0.0,0.0
""",
    "obd/random/men/item_context.csv": """\
,item_id,item_feature_0,item_feature_1
0,0,-0.55,h1
1,1,-0.61,h2
""",
    "obd/random/men/men.csv": """\
,timestamp,item_id,position,click,propensity_score,user_feature_0,user_feature_1,user_feature_2,user_feature_3,user-item_affinity_0,user-item_affinity_1
0,2019-11-24 00:04:27.815203+00:00,1,1,0,0.5,a,b,c,d,0.0,0.0
1,2019-11-24 00:04:27.815203+00:00,0,2,1,0.5,a,b,c,d,0.0,1.0
2,2019-11-24 00:05:42.118207+00:00,1,3,0,0.5,e,b,c,d,0.0,0.0
3,2019-11-24 00:06:00.000000+00:00,1,1
4,2019-11-24 00:07:00.000000+00:00,0,1,0,1.5,e,b,c,d,0.0,0.0
""",
    "yahoo-r3/ydata-ymusic-rating-study-v1_0-test.txt": """\
3\t812\t2
3\t907\t4
5\t650\t5
""",
    "yahoo-r3/ydata-ymusic-rating-study-v1_0-train.txt": """\
3\t211\t4
3\t388\t2
5\t211\t0
5\t742
""",
    "yoochoose/yoochoose-buys.dat": """\
900001,2014-04-06T15:21:07.402Z,300000004,8150,1
900001,2014-04-06T15:21:07.419Z,300000005,6230,2
""",
    "yoochoose/yoochoose-clicks.dat": """\
1,2014-04-07T10:52:13.104Z,300000002,0
1,2014-04-07T10:55:41.520Z,300000001,0
2,2014-04-07T13:56:37.614Z,300000003,S
2,2014-04-07T13:57:19.373Z,300000003,5
3,2014-04-07T13:57:19.373Z
""",
}


TRACKED = Path(__file__).resolve().parent / "fixtures" / "connectors"  # our own formats' files (tabular)


def write_connector_files(root: Path) -> Path:
    """Write every file of ``FILES`` under ``root`` (as ``root/<dataset>/...``) beside a copy of the tracked
    ``tests/fixtures/connectors`` folders, so that one root serves every connector; returns ``root``."""
    shutil.copytree(TRACKED, root, dirs_exist_ok=True)
    for relative, text in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("latin-1" if relative in LATIN1 else "utf-8"))
    return root


@functools.cache
def connector_root() -> Path:
    """The folder of the connector test files, written once per process and removed when it exits."""
    root = Path(tempfile.mkdtemp(prefix="recforge-connector-files-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return write_connector_files(root)
