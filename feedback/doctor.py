"""``lore doctor``'s check of the feedback store (the ``lore.checks`` entry point ``feedback``)."""

from __future__ import annotations

from collections.abc import Iterator

from lore.doctor import Check, DoctorContext

from feedback.store import open_store


def checks(ctx: DoctorContext) -> Iterator[Check]:
    """The project's feedback store: it opens, it is intact (``PRAGMA integrity_check``) and it can be written."""
    if ctx.project is None:
        yield Check(name="feedback store", status="skip", detail="no project given")
        return
    store = open_store(ctx.lore())
    existed = store.path.exists()
    try:
        store.check_writable()  # creates the file and its tables on first use, like the first answer would
        verdict = store.integrity_check()
        if verdict != "ok":
            yield Check(name="feedback store", status="fail", detail=f"{store.path} is damaged: {verdict[:300]}",
                        fix=f"Stop LORE, move {store.path.name} (and its -wal and -shm files) aside and start again: "
                            "LORE creates a new, empty store. Keep the old file to recover votes from it.")
            return
        stats = store.stats()
    finally:
        store.close()
    what = "created (empty)" if not existed else (f"{stats.answers:,} answers, {stats.votes:,} votes, "
                                                  f"{stats.pairs.get('verified', 0):,} verified examples")
    yield Check(name="feedback store", status="ok", detail=f"{store.path}: intact and writable; {what}")
