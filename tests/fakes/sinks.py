"""Sinks for engine tests: they keep what they were given (alerts, notices and digests) and can
fail on cue, the way a destination does."""

from __future__ import annotations

from watchers.delivery import Alert, Digest, StoryUpdate, UpdateResult


class RecordingSink:
    """Keeps every alert and notice; ``failures`` are raised, one per call, before succeeding."""

    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.alerts: list[Alert] = []
        self.notices: list[tuple[str, str]] = []
        self.digests: list[Digest] = []
        self.failures = list(failures or [])

    async def deliver(self, alert: Alert) -> str | None:
        if self.failures:
            raise self.failures.pop(0)
        self.alerts.append(alert)
        return f"m{len(self.alerts)}"

    async def notice(self, route: str, text: str, *, nonce: str | None = None,
                     maybe_sent: bool = False) -> str | None:
        self.notices.append((route, text))
        return None

    async def digest(self, digest: Digest) -> str | None:
        if self.failures:
            raise self.failures.pop(0)
        self.digests.append(digest)
        return f"d{len(self.digests)}"


class EditingSink(RecordingSink):
    """A :class:`RecordingSink` that edits a story's message too: keeps every update."""

    def __init__(self, failures: list[Exception] | None = None) -> None:
        super().__init__(failures)
        self.updates: list[StoryUpdate] = []

    async def update(self, update: StoryUpdate) -> UpdateResult:
        self.updates.append(update)
        return UpdateResult(message_id=update.message_id)
