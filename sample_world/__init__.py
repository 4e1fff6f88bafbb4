"""Generate a sample recommender world: the raw logs of ``docs/raw_formats.md`` and the truth behind them.

The world is the product's test bed. Every raw log that ingestion reads is written in its exact format,
and the hidden quantities the logs were drawn from (examination curve, relevance, exposure) are written
beside them under ``truth/``, so that debiasing, click models and recommenders can be validated against
known answers.

Generative story
----------------
* **Items** belong to a top category and a subcategory (:data:`CATEGORIES`), carry a brand of their
  category, a lognormal price around the category's median, a bias (intrinsic appeal), a popularity
  (what the logging policy knows) and a unit latent vector close to their subcategory's. Titles and
  descriptions are built from those attributes (brand, subcategory noun, material, colour, and the
  adjectives of the latent vector's three strongest dimensions, :data:`LATENT_POLES`), so similar
  items share words. A ``cold_start_share`` of items becomes available at midnight of a later day of
  the period and is never served before; the others predate the period.
* **Users** have a taste (a Dirichlet mixture over top categories, tilted by age band), a unit latent
  vector near their taste-weighted category centroids, and an activity level.
* **True relevance** ``P(relevant | u, i) = sigmoid(RELEVANCE_SCALE * <u, v_i> + bias_i + eps_ui)``,
  where ``eps_ui`` is a fixed logistic noise per (user, item) pair (hash-seeded, so it is the same each
  time the pair meets).
* **Requests** arrive Poisson per user-day, grouped into sessions: seconds between requests of a
  session, at least ``SESSION_MIN_GAP_S`` (typically hours) between sessions. Each request is on one
  surface and renders the first ``viewport`` slots of its slate (served-but-not-rendered is not an
  impression).
* **Logging policy**: a slate is ``slate_size`` distinct available items drawn by Plackett-Luce
  (sampling without replacement proportionally to weights). ``popularity`` (most requests):
  ``w_i = popularity_i * exp(personalization * taste_u[c_i])``, times ``exp(RELATED_ANCHOR_BOOST)``
  for the request's anchor category (drawn from the user's taste) on the ``related`` surface.
  ``uniform_random`` (``exploration_share`` of requests): equal weights.
* **Propensities** are *marginal* slot probabilities ``P(pi_k = i)``: the probability that the
  policy puts that item in slot ``k`` at all, what inverse propensity weighting divides by
  (``E[1{pi_k = i} / p] = 1``). ``uniform_random``: ``1 / n_available``, exact. Popularity: exact at
  slot 0 (``w_i / W``, ``W`` the total weight of the available items), below it a Rao-Blackwellised
  Monte Carlo estimate over 16 slates per request (:func:`sample_world.policy._plackett_luce_marginals`;
  relative standard error 2-3%, bias of ``1 / p`` under 0.1%). On the related surface they are conditional on the request's anchor category (context, like the item
  a related-items widget sits under; written to ``truth/served``). Slates are drawn by the exact
  equivalent of Gumbel top-k that is cheaper for large catalogs: draws with replacement (a category,
  then an item through an alias table), repeats rejected. Propensities are logged in ``slates`` for
  ``propensity_logged_share`` of requests (null otherwise) and always written to ``truth/served``.
* **Examination**: a rendered slot at position ``k`` is examined with probability
  :func:`examination_curve` ``(1 + k) ** -eta`` (``eta`` per surface, :data:`EXAMINATION_ETA`);
  clicked = examined AND relevant, two independent Bernoulli draws.
* **Session events**: each click is followed by a view (dwell seconds in ``value``, longer when the
  relevance probability is higher), sometimes an ``add_to_cart`` and then sometimes a ``purchase``;
  only the click carries the ``request_id``. Events of a session share its ``session_id``, except for
  the ``1 - session_id_logged_share`` of sessions whose client sent none (null).
* **Reviews** follow ``review_share`` of purchases later the same day; the rating (1..5) grows with
  relevance, the text combines sentiment phrases for that rating with the item's own words.
* **Defects**: ``bad_share`` of each JSONL/CSV log's lines get a malformed copy inserted right after
  them (truncated JSON, a missing ``user_id``/``item_id``, an impossible timestamp, an unknown event
  type, a negative price, a rating outside 1..5, whichever apply to that log), and ``dup_share`` an
  exact duplicate. The originals stay intact, so the truth matches the clean logs exactly. Slates
  (typed Parquet) and ``users.csv`` carry no defects. Counts go to the summary and ``world.json``.

Every log file of a day holds only timestamps of that day, in time order (ties in generation order).

Truth files (``DIR/truth/``, never read by ingestion)
----------------------------------------------------
``examination.json``
    ``{"definition": ..., "propensity_definition": ..., "surfaces": {surface: {"eta": float,
    "curve": [P(examined | rendered at position k) for k in 0..slate_size-1],
    "mean_viewport": float}}}``.
``items.parquet``
    item_id string, category string, subcategory string, brand string, price double, bias double
    (additive logit of relevance), popularity double (the logging policy's weight before
    personalization), latent list<float>, exposure_prob double (share of all requests of the period
    in which the item was served *and* rendered), impressions int64, available_from timestamp[ms, UTC],
    cold_start bool.
``users.parquet``
    user_id string, latent list<float>, taste list<float> (over ``world.json``'s ``categories``, in
    that order), activity double (multiplier of ``requests_per_user_day``).
``served/YYYY-MM-DD.parquet``
    one row per served slot: request_id, user_id, item_id, surface, policy string; anchor_category
    string (the related surface's context category for popularity slates, else null); position int32
    (0-based); viewport int32 (rendered depth of the request); impressed bool (position < viewport);
    examination_prob double (curve value when impressed, else 0); relevance_prob double; propensity
    double (the marginal slot probability above, also where the slate does not log it); examined, relevant,
    clicked bool.

Everything is generated day by day and, within a day, in chunks of ``chunk_requests`` requests that
are streamed to disk. Each day and chunk draws from its own ``numpy`` generator spawned from the seed,
so the same config gives byte-identical files whatever ``workers`` is.
"""

from sample_world.config import (
    CATEGORIES,
    EVENT_TYPES,
    EXAMINATION_DEFINITION,
    EXAMINATION_ETA,
    LATENT_DIM,
    LATENT_POLES,
    MEAN_VIEWPORT,
    PROPENSITY_DEFINITION,
    RELEVANCE_SCALE,
    SESSION_MIN_GAP_S,
    SURFACE_TRAFFIC,
    CatalogFormat,
    LoggingPolicy,
    Surface,
    WorldConfig,
    WorldSummary,
    examination_curve,
)
from sample_world.generate import generate_world

__all__ = [
    "CATEGORIES",
    "EVENT_TYPES",
    "EXAMINATION_DEFINITION",
    "EXAMINATION_ETA",
    "LATENT_DIM",
    "LATENT_POLES",
    "MEAN_VIEWPORT",
    "PROPENSITY_DEFINITION",
    "RELEVANCE_SCALE",
    "SESSION_MIN_GAP_S",
    "SURFACE_TRAFFIC",
    "CatalogFormat",
    "LoggingPolicy",
    "Surface",
    "WorldConfig",
    "WorldSummary",
    "examination_curve",
    "generate_world",
]
