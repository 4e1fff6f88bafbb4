"""nn.Modules with short constructors: they map ids to scores; losses live in training/losses.py."""

from training.models.mf import MatrixFactorization
from training.models.two_tower import ItemTower, TwoTower, UserTower

__all__ = ["ItemTower", "MatrixFactorization", "TwoTower", "UserTower"]
