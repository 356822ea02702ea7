"""Small inventory files shared by the inventory service, view and command tests.

SMALL is a four-service shop (gateway → orders → db, mq) with a plaintext API key and a
password inside a database URL. SMALL_V2 is the next state of the same cluster: payments
added, mq removed, orders on a new image and calling payments over HTTP.
"""

from __future__ import annotations

SECRET_KEY_VALUE = "sk_live_51Habcdef0123456789"
SECRET_PASSWORD = "hunter2-orders"

SMALL = f"""\
services:
  gateway:
    image: nginx:1.27
    ports: ["80:80"]
    environment:
      API_UPSTREAM: http://orders:8000
    depends_on: [orders]
  orders:
    image: acme/orders:1.0
    environment:
      DATABASE_URL: postgres://orders:{SECRET_PASSWORD}@db:5432/orders
      STRIPE_API_KEY: {SECRET_KEY_VALUE}
      AMQP_URL: amqp://mq:5672
    depends_on: [db, mq]
  db:
    image: postgres:16
    ports: ["5432:5432"]
  mq:
    image: rabbitmq:3.13
"""

SMALL_V2 = """\
services:
  gateway:
    image: nginx:1.27
    ports: ["80:80"]
    environment:
      API_UPSTREAM: http://orders:8000
    depends_on: [orders]
  orders:
    image: acme/orders:2.0
    environment:
      DATABASE_URL: postgres://orders:${DB_PASSWORD}@db:5432/orders
      PAYMENTS_URL: http://payments:8000
    depends_on: [db, payments]
  payments:
    image: acme/payments:1.0
  db:
    image: postgres:16
    ports: ["5432:5432"]
"""

# name -> kind, and (source, target) -> edge kind, as inference gives them for SMALL.
SMALL_KINDS = {"gateway": "gateway", "orders": "service", "db": "database", "mq": "broker"}
SMALL_EDGES = {("gateway", "orders"): "sync_http", ("orders", "db"): "database", ("orders", "mq"): "async_event"}

# A "billion laughs": nine levels of nine-fold aliases, a few hundred bytes that expand to 9**7 nodes.
ALIAS_BOMB = (
    'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    'services: {x: {image: "nginx:1", environment: {A: *g}}}\n'
)

# (label, text, a fragment of the error a person sees)
BAD_INPUTS = [
    ("invalid-yaml", "services:\n  web: [unclosed\n", "Invalid YAML in document 1, line 3"),
    ("wrong-shape", "services: [web, db]\n", "'services' must be a mapping of service names"),
    ("not-an-inventory", "- 1\n- 2\n", "Could not detect the format"),
    ("alias-bomb", ALIAS_BOMB, "alias bomb"),
    ("duplicate-names", "services:\n  web:\n    image: a:1\n  web:\n    image: b:1\n", "duplicate key 'web'"),
    (
        "duplicate-k8s-names",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
        "spec: {template: {spec: {containers: [{name: c, image: 'a:1'}]}}}\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
        "spec: {template: {spec: {containers: [{name: c, image: 'b:1'}]}}}\n",
        "Duplicate service names: web",
    ),
    (
        "unknown-edge",
        "services:\n  web:\n    image: a:1\n    depends_on: [ghost]\n",
        "Service 'web' depends on unknown service 'ghost'",
    ),
]
