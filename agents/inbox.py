"""An agent's inbox: what arrived and has not entered a prompt yet, and what it has already shown.

Messages kept by the supervisor carry an id and may arrive more than once
(the supervisor pushes a message again until it is acknowledged). The inbox
shows each id once: a copy of a message still waiting is dropped, a copy of
one already shown is reported (``SHOWN``) so the agent acknowledges it again.
Local notes (the supervisor's warning in a step verdict) have no id.

Questions (``message_agent`` from another agent) are shown once too, then
wait for this agent's answer; replies to this agent's own questions wait for
the ``message_agent`` call that asked them (``take_reply``), and enter the
next prompt like any message when nobody waits for them any more.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from swarm_core.messages.inbox import Kind

_PREFIX = {Kind.RESULT: "result from", Kind.NOTICE: "notice from", Kind.QUESTION: "question from",
           Kind.REPLY: "reply from"}


@dataclass(frozen=True)
class Note:
    """One message for the agent."""

    sender: str
    kind: str
    text: str
    id: str = ""
    reply_to: str = ""

    def line(self) -> str:
        """How the message reads in the prompt."""
        return f"[{_PREFIX.get(self.kind, 'message from')} {self.sender}] {self.text}"  # type: ignore[call-overload]


class Arrival(Enum):
    """What :meth:`AgentInbox.receive` made of a message."""

    NEW = "new"
    WAITING = "waiting"  # a copy of a message not shown yet: dropped
    SHOWN = "shown"  # a copy of a message already shown: acknowledge it again


class AgentInbox:
    """Messages not yet shown, questions not yet answered, and the ids already shown."""

    def __init__(self) -> None:
        self.notes: list[Note] = []  # not yet shown, oldest first (questions among them)
        self.unanswered: list[Note] = []  # questions shown, answered after the step that showed them
        self._waiting: set[str] = set()
        self._shown: set[str] = set()

    def receive(self, note: Note) -> Arrival:
        """Take an arriving message (a redelivered id is never shown twice)."""
        if note.id:
            if note.id in self._shown:
                return Arrival.SHOWN
            if note.id in self._waiting:
                return Arrival.WAITING
            self._waiting.add(note.id)
        self.notes.append(note)
        return Arrival.NEW

    def has_news(self) -> bool:
        """Something to show, or a question waiting for this step's answer (do_nothing must not wait)."""
        return bool(self.notes or self.unanswered)

    def take(self) -> tuple[list[Note], list[Note]]:
        """The messages for this step's prompt, as ``(notes, questions)``; they count as shown."""
        taken, self.notes = self.notes, []
        self._mark_shown(taken)
        questions = [n for n in taken if n.kind == Kind.QUESTION]
        self.unanswered.extend(questions)
        return [n for n in taken if n.kind != Kind.QUESTION], questions

    def reply_ready(self, question_id: str) -> bool:
        """Whether the reply to this agent's question ``question_id`` has arrived (and is not shown)."""
        return any(n.kind == Kind.REPLY and n.reply_to == question_id for n in self.notes)

    def take_reply(self, question_id: str) -> Note | None:
        """The reply to question ``question_id``, taken out of the inbox (it counts as shown)."""
        for note in self.notes:
            if note.kind == Kind.REPLY and note.reply_to == question_id:
                self.notes.remove(note)
                self._mark_shown([note])
                return note
        return None

    def answered(self, questions: list[Note]) -> None:
        """These questions got their answer."""
        self.unanswered = [q for q in self.unanswered if q not in questions]

    def _mark_shown(self, notes: list[Note]) -> None:
        for note in notes:
            if note.id:
                self._waiting.discard(note.id)
                self._shown.add(note.id)
