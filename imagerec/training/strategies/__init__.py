"""Training modes, picked from one map keyed by the mode."""

from imagerec.training.schemas import TrainingMode
from imagerec.training.strategies.base import TrainingStrategy, TrainPlan
from imagerec.training.strategies.distillation import DistillationStrategy
from imagerec.training.strategies.freeze import FreezeStrategy
from imagerec.training.strategies.incremental import IncrementalStrategy
from imagerec.training.strategies.regular import RegularStrategy

STRATEGIES: dict[TrainingMode, TrainingStrategy] = {
    TrainingMode.regular: RegularStrategy(),
    TrainingMode.freeze_strategy: FreezeStrategy(),
    TrainingMode.incremental: IncrementalStrategy(),
    TrainingMode.distillation: DistillationStrategy(),
}

__all__ = ["STRATEGIES", "TrainPlan", "TrainingStrategy"]
