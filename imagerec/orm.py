"""Imports every ORM model so that ``Base.metadata`` is complete (Alembic, tests)."""

from imagerec.auth.models import ApiKey
from imagerec.datasets.models import Dataset
from imagerec.db import Base
from imagerec.evaluation.models import Evaluation, EvaluationImage
from imagerec.labelstudio.models import LabelStudioConnection, LabelStudioProject
from imagerec.model_versions.models import ModelVersion
from imagerec.tasks.models import Task, TaskLog, TaskMetric, TaskRef
from imagerec.workers.models import Deployment, Worker

__all__ = ["ApiKey", "Base", "Dataset", "Deployment", "Evaluation", "EvaluationImage", "LabelStudioConnection",
           "LabelStudioProject", "ModelVersion", "Task", "TaskLog", "TaskMetric", "TaskRef",
           "Worker"]
