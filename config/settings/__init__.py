"""Settings, split by concern. ``config.settings`` is the run profile; ``config.settings.test``
is the explicit test profile."""

from config.settings.base import *  # noqa: F403
from config.settings.maestro import *  # noqa: F403
from config.settings.realtime import *  # noqa: F403
