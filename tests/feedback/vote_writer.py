"""A child process for the concurrency tests: casts votes and reports each one only once it is acknowledged.

Usage: ``python vote_writer.py DB ANSWER_ID PREFIX COUNT ACK_FILE``. Vote ``i`` has the
idempotency key ``PREFIX-i``; its key is appended to ``ACK_FILE`` only after
``FeedbackStore.vote`` returned, i.e. after COMMIT. A process killed at any
moment may have stored a vote it never reported, never the reverse.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from feedback.store import FeedbackStore

    db, answer_id, prefix, count, ack_file = argv[1], argv[2], argv[3], int(argv[4]), argv[5]
    store = FeedbackStore(db)
    with open(ack_file, "a", encoding="utf-8") as acks:
        for i in range(count):
            key = f"{prefix}-{i}"
            store.vote(answer_id, 1 if i % 3 else -1, user=f"{prefix}-user{i % 11}", idempotency_key=key,
                       comment=f"vote {i}")
            acks.write(key + "\n")
            acks.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
