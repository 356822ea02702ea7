"""Product settings: providers, models, session limits, hub."""

from __future__ import annotations

import json

from config.env import env_float, env_int, env_str

# Global provider: rules | anthropic | openai. Projects and specialists may override it.
MAESTRO_PROVIDER = env_str("MAESTRO_PROVIDER", "rules")
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY")
ANTHROPIC_BASE_URL = env_str("ANTHROPIC_BASE_URL")
ANTHROPIC_MODEL = env_str("ANTHROPIC_MODEL", "claude-sonnet-4-6")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL")
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_MODEL = env_str("OPENAI_MODEL", "gpt-4o-mini")
PROVIDER_TIMEOUT = env_float("PROVIDER_TIMEOUT", 120.0)
PROVIDER_MAX_RETRIES = env_int("PROVIDER_MAX_RETRIES", 4)

# Absolute links (teams_app.links): MAESTRO_BASE_URL when set, else the request's own scheme and
# host, else (no request: emails from workers, the stdio MCP server) where `make run` serves.
MAESTRO_BASE_URL = env_str("MAESTRO_BASE_URL")
_SERVE_HOST = env_str("HOST", "127.0.0.1")
MAESTRO_SERVE_URL = f"http://{'127.0.0.1' if _SERVE_HOST in ('0.0.0.0', '::', '') else _SERVE_HOST}:{env_int('PORT', 8000)}"

# Sessions
MAESTRO_DISCUSSION_ROUNDS = env_int("MAESTRO_DISCUSSION_ROUNDS", 2)
MAESTRO_CONSENSUS_THRESHOLD = env_float("MAESTRO_CONSENSUS_THRESHOLD", 0.66)
MAESTRO_DELTA_FRAME_MS = env_int("MAESTRO_DELTA_FRAME_MS", 50)
# How often a running call's text so far is saved on its contribution (streamed frames are not kept).
MAESTRO_STREAM_SAVE_MS = env_int("MAESTRO_STREAM_SAVE_MS", 1000)
# A round's calls run side by side on a worker's threads: at most this many at once per process.
MAESTRO_CALL_THREADS = env_int("MAESTRO_CALL_THREADS", 32)
# Results that arrive within this long of each other are recorded in one transaction (opened by the first).
MAESTRO_RESULT_GATHER_MS = env_int("MAESTRO_RESULT_GATHER_MS", 20)

# Inventory
INVENTORY_MAX_BYTES = env_int("INVENTORY_MAX_BYTES", 1_000_000)

# Hub
HUB_RATE_LIMIT_PER_MINUTE = env_int("HUB_RATE_LIMIT_PER_MINUTE", 120)
HUB_WORKER_PING_TIMEOUT = env_float("HUB_WORKER_PING_TIMEOUT", 0.5)
HUB_WORKER_CACHE_SECONDS = env_float("HUB_WORKER_CACHE_SECONDS", 5.0)
HUB_ROUTER_CACHE_SECONDS = env_float("HUB_ROUTER_CACHE_SECONDS", 2.0)  # a specialist edit reaches routing within this
HUB_MCP_WAIT_SECONDS = env_float("HUB_MCP_WAIT_SECONDS", 300.0)  # how long MCP run_task/*_assist wait for the answer
# Per project slug, a folder with Task Master planning files whose PRDs the hub offers: {"demo": "/srv/repos/demo"}
HUB_PLANNING_DIRS: dict[str, str] = json.loads(env_str("HUB_PLANNING_DIRS", "") or "{}")
