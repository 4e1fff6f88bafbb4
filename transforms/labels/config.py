"""Label settings and the names of their choices: estimators, engagement, relevance grouping, grades."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from transforms.cutoffs import Cutoffs
from transforms.labels.click_model import ClickModelConfig
from warehouse.contracts import EventType


class PropensitySource(StrEnum):
    """Which estimator produced a row's propensity, in order of preference."""

    LOGGED = "logged"
    CLICK_MODEL = "click_model"
    POPULARITY = "popularity"


class Estimand(StrEnum):
    """What the inverse propensities of exposure rows estimate: one choice per label table and split.

    ``position``: ``theta = P(examined | surface, position)`` for every exposure row (source
    ``click_model``): the loss is debiased for position only, towards the relevance of what was served.
    ``logged``: ``theta = P(policy put the item in its slot) * P(examined | slot)`` (source ``logged``):
    debiased towards the whole catalog; every exposure row must carry a logged propensity (a split with
    one that does not fails; rows whose slot disagrees with their slate are left out and counted).
    ``auto``: ``logged`` for a split whose exposure rows all carry a logged propensity, ``position``
    otherwise (decided per split from that split's rows only).

    Ratings-only splits (no exposure logs before the split's end) use ``popularity`` whatever this says.
    """

    AUTO = "auto"
    POSITION = "position"
    LOGGED = "logged"


class Engagement(StrEnum):
    """What makes an exposure's ``Y`` 1: a linked click, or (logs without clicks) a positive rating."""

    CLICKS = "clicks"
    RATINGS = "ratings"


class RelevanceGrouping(StrEnum):
    """What the click model's relevance parameters are per.

    ``item``: one per item. ``item_context``: one per item and two context flags: whether the item's
    top-level category is the most common one among the items rendered with it (the slate's context),
    and whether it is the category the user was shown most (the user's taste, as the policy sees it).
    A personalized or contextual logging policy ranks the items of the user's (or the anchor's)
    category first, so even for one item relevance falls with position; with one parameter per item
    that drop leaks into the examination curve (on the sample world's ``related`` surface, noise-free,
    the deepest positions came out up to 0.07 too low; with both flags, 0.03). The flags are defined
    by what was rendered, never by clicks, so they do not depend on the outcome the model explains,
    and only by impressions before the scope's cut-off.
    """

    ITEM = "item"
    ITEM_CONTEXT = "item_context"


class ExposureBasis(StrEnum):
    """What the popularity counts ``n_i`` count."""

    IMPRESSIONS = "impressions"
    RATINGS = "ratings"


@dataclass(frozen=True)
class GradeRule:
    """An explicit signal that earns a relevance grade.

    Attributes:
        signal: The event type (``rating`` covers reviews too).
        grade: The grade earned (higher is more relevant).
        min_value: When set, the event's value (dwell seconds, rating) must be at least this.
    """

    signal: EventType
    grade: int
    min_value: float | None = None


DEFAULT_GRADES: tuple[GradeRule, ...] = (
    GradeRule(EventType.CLICK, 1),
    GradeRule(EventType.VIEW, 2, min_value=30.0),  # a half-minute read is more than a mis-click
    GradeRule(EventType.ADD_TO_CART, 2),
    GradeRule(EventType.PURCHASE, 3),
    GradeRule(EventType.RATING, 4, min_value=4.0),
)


@dataclass(frozen=True)
class LabelConfig:
    """How labels are built.

    Attributes:
        cutoffs: Split boundaries; propensities of a split use only data before its end.
        clip_min: ``M``: propensities are clipped from below at this value before inverting.
        snips: Self-normalize the popularity propensities (the only ones without an absolute scale):
            per split, their inverse is rescaled so that it sums to the number of (user, item) pairs
            over the observed exposures (SNIPS). Logged and click-model rows are left as they are.
        estimand: What the exposure rows' weights estimate (:class:`Estimand`): one per split.
        popularity_eta: ``eta`` of the popularity heuristic (Saito et al. use 0.5).
        positive_rating: Ratings-only data: a rating at or above this is an observed positive.
        grades: Signal to grade mapping for graded relevance.
        attribution_window: Signals after a click count for it within this window.
        relevance_by: Grouping of the click model's relevance parameters.
        click_model: EM settings.
    """

    cutoffs: Cutoffs
    clip_min: float = 0.01
    snips: bool = False
    estimand: Estimand = Estimand.AUTO
    popularity_eta: float = 0.5
    positive_rating: float = 4.0
    grades: tuple[GradeRule, ...] = DEFAULT_GRADES
    attribution_window: dt.timedelta = dt.timedelta(hours=24)
    relevance_by: RelevanceGrouping = RelevanceGrouping.ITEM_CONTEXT
    click_model: ClickModelConfig = field(default_factory=ClickModelConfig)

    def __post_init__(self) -> None:
        if not 0.0 < self.clip_min <= 1.0:
            raise ValueError(f"clip_min (M) must be in (0, 1], got {self.clip_min}")
        if self.popularity_eta < 0:
            raise ValueError(f"popularity_eta must be non-negative, got {self.popularity_eta}")
        object.__setattr__(self, "estimand", Estimand(self.estimand))
        object.__setattr__(self, "grades", tuple(GradeRule(EventType(g.signal), g.grade, g.min_value) for g in self.grades))

