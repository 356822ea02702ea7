"""The Kubernetes importer: workloads, Services as DNS names, ConfigMaps, secrets, bad input."""

from __future__ import annotations

import textwrap

import pytest

from teams_app.errors import ApplicationError
from teams_app.inventory.importers import import_text
from teams_app.inventory.types import ParsedInventory, PortSpec

MANIFESTS = """
apiVersion: v1
kind: ConfigMap
metadata: {name: cart-config}
data:
  REDIS_ADDR: "redis-cart:6379"
  LOG_LEVEL: info
---
apiVersion: v1
kind: ConfigMap
metadata: {name: urls}
data:
  payments: "http://payments.default.svc.cluster.local:8080"
---
apiVersion: v1
kind: Secret
metadata: {name: db}
stringData: {password: hunter2-plaintext}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cart
  labels: {app: cart, team: checkout}
  annotations: {maestro.patterns.auth: "jwt,mtls", unrelated: ignored}
spec:
  replicas: 3
  selector: {matchLabels: {app: cart}}
  template:
    metadata: {labels: {app: cart}}
    spec:
      containers:
        - name: server
          image: gcr.io/demo/cartservice:v0.10.1
          ports: [{containerPort: 7070, name: grpc}]
          envFrom: [{configMapRef: {name: cart-config}}]
          env:
            - {name: DB_PASSWORD, valueFrom: {secretKeyRef: {name: db, key: password}}}
            - {name: ORDERS_ADDR, value: "http://orders"}
            - {name: PAYMENTS_URL, valueFrom: {configMapKeyRef: {name: urls, key: payments}}}
            - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
          readinessProbe: {grpc: {port: 7070}}
          resources:
            limits: {cpu: 300m, memory: 128Mi}
        - name: istio-proxy
          image: istio/proxyv2
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: redis}
spec:
  serviceName: redis-cart
  template:
    metadata: {labels: {app: redis-cart}}
    spec:
      containers:
        - name: redis
          image: redis:7-alpine
          ports: [{containerPort: 6379, hostPort: 16379}]
          livenessProbe: {tcpSocket: {port: 6379}}
---
apiVersion: v1
kind: Service
metadata: {name: redis-cart}
spec:
  selector: {app: redis-cart}
  ports: [{port: 6379}]
---
apiVersion: v1
kind: List
items:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: orders-v2}
    spec:
      template:
        metadata: {labels: {app: orders, version: v2}}
        spec:
          containers:
            - name: orders
              image: acme/orders:2.0.0
              ports: [{containerPort: 8080, name: http}]
  - apiVersion: v1
    kind: Service
    metadata: {name: orders}
    spec:
      type: NodePort
      selector: {app: orders}
      ports: [{port: 80, targetPort: http, nodePort: 30080}]
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: payments}
    spec:
      template:
        metadata: {labels: {app: payments}}
        spec:
          containers: [{name: p, image: acme/payments:1.0}]
  - apiVersion: v1
    kind: Service
    metadata: {name: payments}
    spec:
      type: LoadBalancer
      selector: {app: payments}
      ports: [{port: 443, targetPort: 8443}]
  - apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    metadata: {name: payments}
    spec:
      scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: payments}
      minReplicas: 2
"""


def k8s(text: str) -> ParsedInventory:
    return import_text(textwrap.dedent(text), "k8s")


def test_workload_fields() -> None:
    inv = k8s(MANIFESTS)
    assert [s.name for s in inv.services] == ["cart", "redis", "orders-v2", "payments"]
    cart = inv.service("cart")
    assert cart is not None
    assert cart.image == "gcr.io/demo/cartservice:v0.10.1"  # the first container, not the sidecar
    assert cart.ports == [PortSpec(7070, None)]
    assert cart.replicas == 3
    assert cart.restart == "Always"
    assert cart.healthcheck is True
    assert cart.resources == {"cpus": "0.3", "memory": "128Mi"}
    assert cart.labels["app"] == "cart"
    assert cart.labels["team"] == "checkout"
    assert cart.labels["maestro.patterns.auth"] == "jwt,mtls"
    assert "unrelated" not in cart.labels
    assert cart.networks == ["default"]
    assert cart.environment["LOG_LEVEL"] == "info"  # from envFrom
    assert cart.environment["POD_IP"] == "field:status.podIP"
    assert cart.patterns["auth"] == ["jwt", "mtls"]
    assert "grpc" in cart.patterns["communication"]  # the port is named grpc

    redis = inv.service("redis")
    assert redis is not None
    assert redis.kind == "cache"
    assert redis.ports == [PortSpec(6379, 16379)]  # hostPort
    assert redis.healthcheck is True
    assert redis.replicas == 1


def test_secret_values_are_never_plaintext() -> None:
    inv = k8s(MANIFESTS)
    cart = inv.service("cart")
    assert cart is not None
    assert cart.environment["DB_PASSWORD"] == "secret:db/password"
    assert "hunter2" not in repr(inv)


def test_secret_ref_records_key_names_only() -> None:
    inv = k8s(
        """
        apiVersion: v1
        kind: Secret
        metadata: {name: api-keys}
        data: {STRIPE_KEY: c2tfbGl2ZQ==}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: api}
        spec:
          template:
            metadata: {labels: {app: api}}
            spec:
              containers: [{name: a, image: acme/api:1, envFrom: [{secretRef: {name: api-keys}, prefix: X_}]}]
        """
    )
    assert inv.services[0].environment == {"X_STRIPE_KEY": "secret:api-keys/STRIPE_KEY"}


def test_service_dns_names_resolve_to_the_selected_workloads() -> None:
    inv = k8s(MANIFESTS)
    edges = {(d.source, d.target, d.kind, d.via) for d in inv.dependencies}
    assert edges == {
        ("cart", "redis", "cache", "env:REDIS_ADDR"),  # redis-cart:6379 via a ConfigMap (envFrom)
        ("cart", "orders-v2", "sync_http", "env:ORDERS_ADDR"),  # http://orders
        ("cart", "payments", "sync_http", "env:PAYMENTS_URL"),  # FQDN via configMapKeyRef
    }


def test_node_port_and_load_balancer_publish_host_ports() -> None:
    inv = k8s(MANIFESTS)
    orders = inv.service("orders-v2")
    payments = inv.service("payments")
    assert orders is not None and payments is not None
    assert orders.ports == [PortSpec(8080, 30080)]  # named targetPort "http"
    assert payments.ports == [PortSpec(8443, 443)]
    assert payments.replicas == 2  # HorizontalPodAutoscaler minReplicas


def test_namespaces_scope_dns_names() -> None:
    inv = k8s(
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: front}
        spec:
          template:
            metadata: {labels: {app: web}}
            spec:
              containers:
                - name: w
                  image: acme/web:1
                  env:
                    - {name: SHORT, value: "http://api"}
                    - {name: QUALIFIED, value: "api.back:8080"}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: api, namespace: back}
        spec:
          template:
            metadata: {labels: {app: api}}
            spec:
              containers: [{name: a, image: acme/api:1}]
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: api, namespace: back}
        spec: {selector: {app: api}, ports: [{port: 8080}]}
        """
    )
    # "api" alone is looked up in web's own namespace (front), where no such Service exists.
    assert [(d.source, d.target, d.via) for d in inv.dependencies] == [("web", "api", "env:QUALIFIED")]
    assert inv.service("api").networks == ["back"]  # type: ignore[union-attr]


def test_external_name_service_is_external() -> None:
    inv = k8s(
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: payments}
        spec:
          template:
            metadata: {labels: {app: payments}}
            spec:
              containers:
                - {name: p, image: acme/payments:1, env: [{name: STRIPE, value: "https://api.stripe.com/v1"}]}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: stripe}
        spec: {type: ExternalName, externalName: api.stripe.com}
        """
    )
    stripe = inv.service("stripe")
    assert stripe is not None and stripe.kind == "external"
    assert [(d.source, d.target, d.kind) for d in inv.dependencies] == [("payments", "stripe", "sync_http")]


def test_missing_config_map_is_a_warning() -> None:
    inv = k8s(
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: api}
        spec:
          template:
            metadata: {labels: {app: api}}
            spec:
              containers: [{name: a, image: acme/api:1, envFrom: [{configMapRef: {name: absent}}]}]
        """
    )
    assert any("ConfigMap 'absent'" in w for w in inv.warnings)


def _deployment(name: str = "api", spec: str = "") -> str:
    return textwrap.dedent(
        f"""
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: {name}}}
        spec:
          {spec}
          template:
            metadata: {{labels: {{app: {name}}}}}
            spec:
              containers: [{{name: a, image: acme/{name}:1}}]
        """
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_deployment(spec="replicas: three"), "Deployment 'api': 'spec.replicas' must be an integer"),
        (_deployment(spec="replicas: [1]"), "'spec.replicas' must be an integer, not a list"),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec: {template: {spec: {containers: []}}}\n",
            "Deployment 'api' has no containers",
        ),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec: {template: {spec: {containers: {a: b}}}}\n",
            "'spec.template.spec.containers' must be a list",
        ),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\n"
            "spec: {template: {spec: {containers: [{image: a, env: {A: b}}]}}}\n",
            "'spec.template.spec.containers[0].env' must be a list",
        ),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\n"
            "spec: {template: {spec: {containers: [{image: a, ports: [{containerPort: http}]}]}}}\n",
            "'spec.template.spec.containers[0].ports[0].containerPort' must be an integer",
        ),
        ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {labels: {}}\nspec: {}\n", "Document 1 (Deployment) has no metadata.name"),
        ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: My API}\nspec: {}\n", "contains whitespace"),
        ("apiVersion: v1\nkind: List\nitems: {a: b}\n", "Document 1: 'items' must be a list"),
        ("apiVersion: v1\nkind: List\nitems: [[1]]\n", "Document 1, item 1 must be a Kubernetes object"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {}\n", "declares no services"),
    ],
)
def test_wrong_shapes_name_the_object_and_field(text: str, message: str) -> None:
    with pytest.raises(ApplicationError) as exc:
        import_text(text, "k8s")
    assert message in str(exc.value)


def test_duplicate_workload_names_are_listed() -> None:
    text = _deployment("api") + "---\n" + _deployment("api").replace("Deployment", "StatefulSet")
    with pytest.raises(ApplicationError, match="Duplicate service names: api"):
        import_text(text, "k8s")


def test_ingress_and_host_port_publish_a_workload_and_appprotocol_states_grpc() -> None:
    inv = k8s(
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec:
          template:
            metadata: {labels: {app: web}}
            spec:
              containers: [{name: web, image: acme/web:1.0, ports: [{containerPort: 8080}]}]
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        spec:
          selector: {app: web}
          ports: [{port: 80, targetPort: 8080, appProtocol: kubernetes.io/h2c}]
        ---
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {name: web}
        spec:
          tls: [{hosts: [shop.example.com]}]
          rules:
            - http:
                paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]
        ---
        apiVersion: apps/v1
        kind: DaemonSet
        metadata: {name: agent}
        spec:
          template:
            metadata: {labels: {app: agent}}
            spec:
              containers:
                - name: agent
                  image: acme/agent:1.0
                  ports: [{containerPort: 9100, hostPort: 9100}, {containerPort: 9101, hostPort: 9101, hostIP: 127.0.0.1}]
        """
    )
    assert inv.service("web").ports == [PortSpec(8080, 443)]  # published through the TLS Ingress
    assert inv.service("web").patterns["communication"] == ["grpc"]
    agent = inv.service("agent").ports
    assert agent == [PortSpec(9100, 9100), PortSpec(9101, 9101, host_ip="127.0.0.1")]
    assert [p.loopback for p in agent] == [False, True]
