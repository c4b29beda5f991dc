"""POST /v2/models/{name}/feedback: ground truth for predictions this server answered.

Each body is answered by a task of its own, off the inference path. A body is checked
whole before anything is applied (400 naming the item and field). Items whose ids name
another serving process (feedback.target, near this connection's address) are sent on
to it, one request per process with FORWARDED_HEADER, and its answer is merged into
this one; the others are looked up here. Docs: docs/serving.md, "Feedback".
"""

from __future__ import annotations

import asyncio
import logging

import orjson

from coalmine_serving import client
from coalmine_serving.feedback import (
    FORWARDED,
    INVALID,
    UNREACHABLE,
    Counts,
    Invalid,
    Item,
    Ledger,
    parse,
)
from coalmine_serving.http import FORWARDED_HEADER, JSON, Request, Respond, error_body

log = logging.getLogger("coalmine_serving")

TIMEOUT_SECONDS = 2.0


class Refused(Exception):
    """Another process refused the items sent to it (400): its message names the item."""


class FeedbackEndpoint:
    """Answers feedback bodies with the ledger of this process and its peers' answers."""

    def __init__(self, model: str, ledger: Ledger) -> None:
        self.ledger = ledger
        self._path = b"/v2/models/%s/feedback" % model.encode()
        self._tasks: set[asyncio.Task[None]] = set()

    def handle(self, request: Request, respond: Respond) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(request, respond))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, request: Request, respond: Respond) -> None:
        ledger = self.ledger
        try:
            items = parse(request.body, ledger.stats.classifier)
            plan = ledger.plan(items, None if request.forwarded else request.local)
        except Invalid as exc:
            ledger.count(INVALID, exc.items)
            respond(400, error_body(exc.message), JSON)
            return
        counts = Counts()
        ledger.apply(plan.local, counts)
        sent = [self._forward(host, port, group) for (host, port), group in plan.remote.items()]
        answers = await asyncio.gather(*sent, return_exceptions=True)
        refusals = []
        for ((host, port), group), answer in zip(plan.remote.items(), answers, strict=True):
            if isinstance(answer, Refused):
                ledger.count(FORWARDED, len(group))
                refusals.append(str(answer))
            elif isinstance(answer, BaseException):
                reason = str(answer) or type(answer).__name__
                log.warning("feedback: %d items for %s:%d: %s", len(group), host, port, reason)
                ledger.count(UNREACHABLE, len(group))
                for item in group:
                    counts.add(UNREACHABLE, item.id)
            else:
                ledger.count(FORWARDED, len(group))
                counts.merge(answer)
        if refusals:
            respond(400, error_body("; ".join(refusals)), JSON)
        else:
            respond(counts.status, counts.body(), JSON)

    async def _forward(self, host: str, port: int, items: list[Item]) -> Counts:
        """What the process at host:port answered for its items."""
        body = orjson.dumps(
            {
                "feedback": [{"id": i.id, "truth": i.truth} for i in items],
                "indexes": [i.index for i in items],
            }
        )
        status, answer = await asyncio.wait_for(
            client.post_once(host, port, self._path, body, FORWARDED_HEADER + b": 1"),
            TIMEOUT_SECONDS,
        )
        doc = orjson.loads(answer)
        if status == 400 and isinstance(doc, dict):
            raise Refused(str(doc.get("error")))
        if status not in (200, 404):
            raise ValueError(f"answered {status}")
        return Counts.of(doc)
