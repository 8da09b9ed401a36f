# IN PROGRESS (lead engineer is writing the real one): placeholder so the app starts.
class LocalExecutor:
    kind = "local"

    def __init__(self, *, settings, session_factory):
        self.settings = settings

    def start(self): ...

    def stop(self): ...

    def submit(self, task_id): ...

    def cancel(self, task_id): ...

    def state(self):
        return {"kind": self.kind, "running": True}
