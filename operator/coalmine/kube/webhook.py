"""Send a monitoring webhook: one JSON POST, retried once, never raising."""

from __future__ import annotations

import json
import logging
import time
import urllib.request

from coalmine.monitoring.decide import Notification

log = logging.getLogger("coalmine.webhook")
ATTEMPTS = 2
RETRY_PAUSE = 1.0
"""Seconds between the two attempts: enough for a receiver's brief restart."""


def send(notification: Notification) -> str | None:
    """POST the notification's body; None when a 2xx came back, else what went wrong."""
    data = json.dumps(notification.body).encode()
    problem = None
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(RETRY_PAUSE)
        request = urllib.request.Request(
            notification.url,
            data=data,
            headers={"content-type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=notification.timeout_seconds) as r:
                r.read()
                return None
        except OSError as exc:  # URLError and HTTPError (a non-2xx answer) are OSErrors
            problem = str(exc)
            log.warning("webhook %s failed: %s", notification.url, problem)
    return problem
