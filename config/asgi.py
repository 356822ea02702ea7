"""HTTP through Django (and /mcp/ through the hub's MCP server), WebSockets through Channels (cookie auth, origin checked)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from config import socket_writes  # noqa: E402
from config.env import env_bool  # noqa: E402
from sessions_app import live  # noqa: E402
from sessions_app.hub.mcp_http import with_mcp  # noqa: E402
from sessions_app.routing import websocket_urlpatterns  # noqa: E402
from sessions_app.socket_db import SocketAuthMiddlewareStack  # noqa: E402

socket_writes.install()  # a frame is one send (see config/socket_writes.py)
live.warm()  # the first event after a start renders as fast as the next ones

# The one-command profile serves its own static files; behind a proxy, the proxy does.
http_app = ASGIStaticFilesHandler(django_asgi_app) if env_bool("MAESTRO_SERVE_STATIC", False) else django_asgi_app

application = ProtocolTypeRouter(
    {
        "http": with_mcp(http_app),  # /mcp/: the hub's MCP server (Streamable HTTP); the rest: Django
        "websocket": AllowedHostsOriginValidator(SocketAuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
