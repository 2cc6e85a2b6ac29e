"""Locust users that open a new connection for every request (`Connection: close`).

kube-proxy balances connections, not requests: a user holding one keep-alive connection
stays on the pod it reached first, so the `service` router's replica-ratio split only shows
on new connections. These users are the clients that split is for; the haproxy router's
test uses the ordinary keep-alive users.
"""

from typing import ClassVar

from skserve.loadtest import users
from skserve.loadtest.shapes import SkserveShape


class ReconnectingUser(users.SkserveUser):
    default_headers: ClassVar[dict[str, str]] = {"connection": "close"}


__all__ = ["ReconnectingUser", "SkserveShape"]
