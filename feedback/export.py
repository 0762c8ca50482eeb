"""Fine-tuning datasets from verified feedback: OpenAI chat rows and OpenAI preference pairs.

``openai-chat`` (supervised fine-tuning): one line per *verified* example::

    {"messages": [{"role": "system", ...}, {"role": "user", "content": question + grounded context},
                  {"role": "assistant", "content": the verified plan as JSON (or its SQL)}]}

``preference`` (direct preference optimisation): one line per verified
correction and the answer it corrected::

    {"input": {"messages": [system, user], "tools": [], "parallel_tool_calls": true},
     "preferred_output": [{"role": "assistant", "content": the corrected plan}],
     "non_preferred_output": [{"role": "assistant", "content": the rejected plan}]}

Only verified pairs are exported (a pending, rejected or revoked one never
is). Rows are deduplicated, every line is validated against a pydantic model
of its format, and the data is read from one consistent snapshot of the
store (one read transaction); files are written whole and renamed into
place, never appended to. Neither format has a field for provenance, so it
goes to a sidecar ``<name>.provenance.jsonl``: for each row its file and
line, the pair, the answers, who voted and who verified, and the store
revision. ``split=0.9`` writes ``<name>.train.jsonl`` and
``<name>.validation.jsonl``, assigning each row by a hash of its content (the
same row lands in the same split at every export).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lore.types import QueryPlan

from feedback.store import FeedbackStore, Nomination, RecordedAnswer, Snapshot, now

Format = Literal["openai-chat", "preference"]
FORMATS: tuple[str, ...] = ("openai-chat", "preference")
Target = Literal["plan", "sql"]

#: the system message of every exported row
SYSTEM_PROMPT = (
    "You are LORE's planner. Turn the user's analytics question into a query plan over the governed semantic layer, "
    "using only the metrics, dimensions and values listed in the context. Reply with the plan as JSON "
    "(metrics, dimensions, filters, time, order_by, limit), or with {\"sql\": ...} when only SQL can answer."
)
_PLAN_FIELDS = {"metrics", "dimensions", "filters", "time", "order_by", "limit"}


# --- the formats ---------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChatMessage(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1)


class ChatRow(_Strict):
    """A line of an OpenAI chat fine-tuning file."""

    messages: tuple[ChatMessage, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _shape(self) -> ChatRow:
        roles = [m.role for m in self.messages]
        if roles[-1] != "assistant":
            raise ValueError("the last message must be the assistant's (the target)")
        if "user" not in roles:
            raise ValueError("a row needs a user message")
        if "system" in roles[1:]:
            raise ValueError("only the first message may be a system message")
        return self


class AssistantMessage(_Strict):
    role: Literal["assistant"]
    content: str = Field(min_length=1)


class PreferenceInput(_Strict):
    messages: tuple[ChatMessage, ...] = Field(min_length=1)
    tools: tuple[dict[str, Any], ...] = ()
    parallel_tool_calls: bool = True

    @model_validator(mode="after")
    def _ends_with_user(self) -> PreferenceInput:
        if self.messages[-1].role != "user":
            raise ValueError("the input must end with the user's message")
        return self


class PreferenceRow(_Strict):
    """A line of an OpenAI preference (DPO) fine-tuning file."""

    input: PreferenceInput
    preferred_output: tuple[AssistantMessage] = Field(min_length=1, max_length=1)
    non_preferred_output: tuple[AssistantMessage] = Field(min_length=1, max_length=1)

    @model_validator(mode="after")
    def _differ(self) -> PreferenceRow:
        if self.preferred_output[0].content == self.non_preferred_output[0].content:
            raise ValueError("the preferred and non-preferred outputs are the same")
        return self


ROW_MODELS: dict[str, type[ChatRow] | type[PreferenceRow]] = {"openai-chat": ChatRow, "preference": PreferenceRow}


class Provenance(_Strict):
    """Where an exported row came from (a line of the sidecar file)."""

    file: str
    line: int
    format: str
    pair_id: str
    question: str
    source: str
    answer_ids: tuple[str, ...]
    rejected_answer_id: str | None = None
    up_users: tuple[str, ...]
    verified_by: str | None
    verified_at: str | None
    layer_version: str | None = None
    model: str | None = None
    planner: str | None = None
    store_revision: int
    last_event: int
    exported_at: str


class ExportReport(_Strict):
    format: str
    #: split name (all | train | validation) -> file written
    files: dict[str, str]
    rows: dict[str, int]
    provenance: str
    duplicates: int = 0
    skipped: int = 0


# --- rendering (pure) ------------------------------------------------------------------------------


def plan_text(plan: QueryPlan) -> str:
    """The target text of a plan: its computation as compact JSON (free SQL as ``{"sql": ...}``).

    >>> plan_text(QueryPlan(metrics=("game_installs",), dimensions=("games.platform",)))
    '{"dimensions":["games.platform"],"metrics":["game_installs"]}'
    >>> plan_text(QueryPlan(sql="SELECT 1"))
    '{"sql":"SELECT 1"}'
    """
    if plan.runs_sql:
        return json.dumps({"sql": plan.sql}, separators=(",", ":"))
    data = plan.model_dump(mode="json", include=_PLAN_FIELDS, exclude_none=True)
    data = {k: v for k, v in data.items() if v not in ((), [], None)}
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def output_text(plan: QueryPlan | None, sql: str | None, target: Target, *, fallback: dict[str, Any] | None = None) -> str | None:
    """What the assistant should answer: the plan JSON, or the SQL (None when there is nothing to say)."""
    if target == "sql":
        return sql or (plan.sql if plan is not None else None) or None
    if plan is not None and (plan.metrics or plan.sql):
        return plan_text(plan)
    return json.dumps(fallback, sort_keys=True, separators=(",", ":")) if fallback else None


def user_text(question: str, answer: RecordedAnswer | None) -> str:
    """The user's message: the question and the context it was grounded on when it was asked.

    >>> print(user_text("hours by region", None))
    Question: hours by region
    """
    lines = [f"Question: {question}"]
    if answer is None:
        return lines[0]
    today = answer.context.get("today")
    if today:
        lines.append(f"Today: {today}")
    retrieved = [h for h in answer.context.get("retrieved", []) if h.get("kind") in ("metric", "dimension", "value")]
    if retrieved:
        lines.append("Context from the semantic layer:")
        for hit in retrieved:
            if hit.get("kind") == "value":
                lines.append(f"- value {hit.get('ref')} = {hit.get('value')}")
            else:
                lines.append(f"- {hit.get('kind')} {hit.get('ref')}: {hit.get('text', '')}".rstrip(": "))
    return "\n".join(lines)


def chat_rows(snap: Snapshot, *, target: Target = "plan", system: str = SYSTEM_PROMPT
              ) -> tuple[list[tuple[ChatRow, dict[str, Any]]], int]:
    """One chat row per verified pair (and how many had nothing to export for ``target``)."""
    rows: list[tuple[ChatRow, dict[str, Any]]] = []
    skipped = 0
    for nom in snap.verified:
        answer = snap.answers.get(nom.answer_id)
        out = output_text(nom.plan, nom.verified_sql or nom.sql, target)
        if out is None:
            skipped += 1
            continue
        row = ChatRow(messages=(ChatMessage(role="system", content=system),
                                ChatMessage(role="user", content=user_text(nom.question, answer)),
                                ChatMessage(role="assistant", content=out)))
        rows.append((row, _provenance(nom, answer, snap)))
    return rows, skipped


def preference_rows(snap: Snapshot, *, target: Target = "plan", system: str = SYSTEM_PROMPT
                    ) -> tuple[list[tuple[PreferenceRow, dict[str, Any]]], int]:
    """One preference row per verified correction and the answer it corrected."""
    pairs = {n.id: n for n in snap.verified}
    rows: list[tuple[PreferenceRow, dict[str, Any]]] = []
    skipped = 0
    for pair, rejected_id in snap.corrections:
        nom = pairs.get(pair)
        rejected = snap.answers.get(rejected_id)
        if nom is None or rejected is None:
            skipped += 1
            continue
        good = output_text(nom.plan, nom.verified_sql or nom.sql, target)
        bad = output_text(rejected.plan, rejected.sql, target,
                          fallback={"status": rejected.status, "message": rejected.message})
        if good is None or bad is None or good == bad:
            skipped += 1
            continue
        row = PreferenceRow(
            input=PreferenceInput(messages=(ChatMessage(role="system", content=system),
                                            ChatMessage(role="user", content=user_text(nom.question, rejected)))),
            preferred_output=(AssistantMessage(role="assistant", content=good),),
            non_preferred_output=(AssistantMessage(role="assistant", content=bad),),
        )
        rows.append((row, _provenance(nom, rejected, snap) | {"rejected_answer_id": rejected_id}))
    return rows, skipped


def _provenance(nom: Nomination, answer: RecordedAnswer | None, snap: Snapshot) -> dict[str, Any]:
    return {
        "pair_id": nom.id, "question": nom.question, "source": nom.source,
        "answer_ids": tuple(dict.fromkeys([nom.answer_id, *nom.corrects])), "up_users": nom.up_users,
        "verified_by": nom.decided_by, "verified_at": nom.decided_at,
        "layer_version": answer.layer_version if answer else None, "model": answer.model if answer else None,
        "planner": answer.planner if answer else None,
        "store_revision": snap.revision, "last_event": snap.last_event,
    }


def dedupe(rows: Sequence[tuple[BaseModel, dict[str, Any]]]) -> tuple[list[tuple[BaseModel, dict[str, Any], str]], int]:
    """Drop rows whose content repeats an earlier row; returns (row, provenance, content hash) and the count dropped."""
    seen: set[str] = set()
    out = []
    for row, prov in rows:
        key = hashlib.sha256(row.model_dump_json().encode()).hexdigest()
        if key in seen:
            continue
        seen.add(key)
        out.append((row, prov, key))
    return out, len(rows) - len(out)


def assign_splits(keys: Sequence[str], train: float) -> list[str]:
    """``train`` or ``validation`` for each content hash, stable across exports; both non-empty when there are 2+ rows.

    >>> assign_splits(["00" * 32, "ff" * 32], 0.9)
    ['train', 'validation']
    >>> assign_splits(["00" * 32, "01" * 32], 0.9)
    ['train', 'validation']
    """
    fractions = [int(k[:8], 16) / 0x1_0000_0000 for k in keys]
    out = ["train" if f < train else "validation" for f in fractions]
    if len(keys) >= 2:
        if "validation" not in out:
            out[max(range(len(keys)), key=lambda i: fractions[i])] = "validation"
        if "train" not in out:
            out[min(range(len(keys)), key=lambda i: fractions[i])] = "train"
    return out


# --- files ----------------------------------------------------------------------------------------------


def output_paths(out: Path, split: float | None) -> tuple[dict[str, Path], Path]:
    """The data files and the provenance sidecar for ``--out`` (and ``--split``).

    >>> files, prov = output_paths(Path("d/ft.jsonl"), 0.9)
    >>> sorted((k, str(v)) for k, v in files.items()), str(prov)
    ([('train', 'd/ft.train.jsonl'), ('validation', 'd/ft.validation.jsonl')], 'd/ft.provenance.jsonl')
    """
    stem = out.with_suffix("") if out.suffix == ".jsonl" else out
    prov = stem.with_name(stem.name + ".provenance.jsonl")
    if split is None:
        return {"all": out}, prov
    return {"train": stem.with_name(stem.name + ".train.jsonl"),
            "validation": stem.with_name(stem.name + ".validation.jsonl")}, prov


def validate_line(line: str, fmt: str) -> BaseModel:
    """Parse one JSONL line against its format's model (raises ``ValueError`` when it does not fit)."""
    model = ROW_MODELS[fmt]
    if not isinstance(json.loads(line), dict):
        raise ValueError("a line must hold one JSON object")
    return model.model_validate_json(line)


def validate_file(path: str | Path, fmt: str) -> int:
    """Validate every line of an exported file; returns the number of rows."""
    count = 0
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            try:
                validate_line(line.rstrip("\n"), fmt)
            except ValueError as err:
                raise ValueError(f"{path}:{number}: {err}") from None
            count += 1
    return count


def _write_atomic(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export(store: FeedbackStore, fmt: Format, out: str | Path, *, split: float | None = None, target: Target = "plan",
           system: str = SYSTEM_PROMPT) -> ExportReport:
    """Write a fine-tuning dataset of ``fmt`` from one snapshot of the store; every line is validated."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if split is not None and not 0.0 < split < 1.0:
        raise ValueError(f"split must be between 0 and 1 (the train share), got {split}")
    snap = store.snapshot()
    built, skipped = (chat_rows if fmt == "openai-chat" else preference_rows)(snap, target=target, system=system)
    rows, duplicates = dedupe(built)  # type: ignore[arg-type]
    files, prov_path = output_paths(Path(out), split)
    names = assign_splits([key for _, _, key in rows], split) if split is not None else ["all"] * len(rows)
    lines: dict[str, list[str]] = {name: [] for name in files}
    provenance: list[str] = []
    stamp = now()
    for (row, prov, _), name in zip(rows, names):
        line = row.model_dump_json()
        validate_line(line, fmt)
        lines[name].append(line)
        record = Provenance(file=files[name].name, line=len(lines[name]), format=fmt, exported_at=stamp, **prov)
        provenance.append(record.model_dump_json())
    for name, path in files.items():
        _write_atomic(path, lines[name])
    _write_atomic(prov_path, provenance)
    return ExportReport(format=fmt, files={k: str(v) for k, v in files.items()},
                        rows={k: len(v) for k, v in lines.items()}, provenance=str(prov_path),
                        duplicates=duplicates, skipped=skipped)
