"""The task-kind registry names real things: every kind's request schema and child-side runner resolve."""

from __future__ import annotations

import importlib

import pytest

from imagerec.fields import RequestModel
from imagerec.tasks.kinds import KINDS
from imagerec.tasks.models import TaskKind

pytestmark = pytest.mark.both_databases


def _resolve(reference: str):
    module_name, _, name = reference.partition(":")
    return getattr(importlib.import_module(module_name), name)


@pytest.mark.parametrize("kind", list(TaskKind))
def test_every_kind_is_registered_with_a_schema_and_a_runner(kind):
    spec = KINDS[kind]
    assert issubclass(_resolve(spec.schema), RequestModel)
    assert callable(_resolve(spec.runner))
