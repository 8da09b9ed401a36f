"""Teacher → student distillation inside Ultralytics' own loop: a trainer subclass installs a criterion that adds
distillation terms to the model's loss. Used by distillation training and by incremental training (the base model
as the teacher of the old classes)."""
