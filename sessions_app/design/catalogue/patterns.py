"""The capability patterns the rule-based designer knows, instantiated on the real cluster.

Each names the services, edges, events, questions and plan tasks it implies, using the
cluster's own broker, database engine, gateway and existing services; what the cluster cannot
ground (no broker, no orders service) is left out or asked of the USER instead of invented.
"""

from __future__ import annotations

import re

from sessions_app.design.catalogue.base import Draft, Facts, Ground, QuestionDraft, pattern
from sessions_app.design.cluster import Cluster
from sessions_app.design.naming import mentions

PAYMENT_PROVIDERS = ("stripe", "adyen", "paypal", "braintree", "mollie", "square", "klarna")
MESSAGE_PROVIDERS = ("sendgrid", "twilio", "mailgun", "ses", "postmark", "smtp")


def _store(cx: Cluster, service: str) -> str:
    return f"{service}-db ({cx.db_engine})"


def _own_database(d: Draft, cx: Cluster, svc: str, *, holds: str) -> None:
    """A new service's database, in the cluster's engine, which only it reaches."""
    d.service(f"{svc}-db", change="add", kind="database", by=("dataflow",), responsibility=f"{cx.db_engine} database owned by {svc} only")
    d.edge(svc, f"{svc}-db", protocol="SQL", purpose=holds, by=("dataflow",))


def _own_database_question(d: Draft, cx: Cluster, svc: str, key: str, **grounds: Ground) -> None:
    """When the cluster's database is already shared (a rule found it): does the new service get
    one of its own? Data flow favours its own; ``grounds`` add the other roles' reasons."""
    shared = cx.shared_database_rule()
    if not shared:
        return
    d.questions.append(QuestionDraft(
        key, f"Does {svc} get its own database?",
        [f"A separate {cx.db_engine} database owned by {svc}", f"A {svc} schema in the shared {cx.database}"],
        {"dataflow": Ground(0, f"{cx.database} is already shared ({shared}); a new owner should not add to it", [shared]), **grounds},
    ))


def _async(cx: Cluster) -> tuple[str, str]:
    """(protocol, mode) for events: the cluster's broker, else plain async."""
    return (cx.broker_protocol or "events", "async")


def _provider(cx: Cluster, facts: Facts, names: tuple[str, ...], fallback: str) -> tuple[str, bool]:
    """(provider node name, known): named in the requirement, or declared in the inventory."""
    for name in names:
        if facts.has(name):
            return cx.external_named(name) or name, True
    existing = cx.external_named(*names)
    return (existing, True) if existing else (fallback, False)


def _triggers(cx: Cluster, facts: Facts, *, exclude: str) -> list[str]:
    """Existing services the requirement names as where something happens (orders, shipping…)."""
    return [svc.name for svc, _ in mentions(facts.text, cx.inventory, kinds=("service",)) if svc.name != exclude]


def service_plan(d: Draft, cx: Cluster, facts: Facts, svc: str, *, new: bool, callers: list[str], events: list[str], secrets: str = "") -> None:
    """The seed's Phase 4 for one new or changed service: template, contracts, container,
    network, event schemas, latency budget, and the USER's review of the API."""
    k = svc
    template = cx.template_service(exclude=svc)
    facts_line = ""
    if template is not None:
        tag = template.image.rsplit(":", 1)[-1] if ":" in template.image else "unpinned"
        facts_line = (
            f" (read from {template.name}: healthcheck {'yes' if template.healthcheck else 'no'}, tag {tag}, "
            f"restart {template.restart or 'none'}, replicas {template.replicas})"
        )
    d.task(f"template:{k}", "pattern", svc, f"Document the service template {svc} follows{facts_line}",
           f"{svc}'s scaffold matches the documented template; deviations are recorded as decisions")
    callers_text = ", ".join(callers) or "its callers"
    d.task(f"contracts:{k}", "integration", svc,
           f"Define the API contracts of {svc} for {callers_text} ({cx.sync_protocol}), versioned like the cluster's other APIs",
           f"Contract tests between {callers_text} and {svc} pass against the reviewed API document",
           after=[f"template:{k}"])
    d.task(f"container:{k}", "devops", svc,
           f"Prepare the container config of {svc}: pinned image tag, healthcheck, restart policy, CPU/memory limits, 2 replicas",
           f"{svc} starts healthy in the staging stack; the rules report no OPS finding for it",
           after=[f"template:{k}"])
    network = f"Isolate {svc}{' and its store' if new else ''} on an internal network reachable only by {callers_text}"
    d.task(f"network:{k}", "security", svc,
           network + (f"; deliver {secrets} from the secret store" if secrets else ""),
           "No host port published; secrets are references, not literal values (no SEC finding)",
           after=[f"container:{k}"])
    if events and cx.broker:
        d.task(f"events:{k}", "dataflow", svc,
               f"Plan the event schemas {', '.join(events)} on {cx.broker} (envelope, version, idempotency key)",
               "Schemas reviewed by producer and consumers; consumers ignore duplicates by event id",
               after=[f"contracts:{k}"])
    budget = facts.latency or "the agreed latency target"
    d.task(f"budget:{k}", "performance", svc,
           f"Split the latency budget ({budget}) across the synchronous hops to {svc} and load-test at {facts.throughput or 'the expected peak'}",
           f"p95 of the {svc} path stays within {budget} in the load test",
           after=[f"contracts:{k}"])
    d.task(f"review:{k}", "user", svc, f"Review the API design of {svc} for the business needs",
           "The product owner confirms the API covers the requirement", after=[f"contracts:{k}"])


@pattern("payments", "Payments and PCI scope", r"payment", r"pay\b", r"stripe", r"adyen", r"paypal", r"braintree", r"pci", r"refund", r"charg", r"card\b")
def payments(cx: Cluster, facts: Facts) -> Draft:
    d = Draft("payments", "Payments and PCI scope")
    existing = cx.name_of("payments")
    svc = existing or "payments"
    provider, known = _provider(cx, facts, PAYMENT_PROVIDERS, "payment-provider")
    if not known:
        d.unknowns.append("Which payment provider will process the payments (Stripe, Adyen, PayPal, …)?")
    orders, checkout = cx.name_of("orders"), cx.name_of("checkout")
    proto, mode = _async(cx)
    pci = "PCI DSS" in facts.compliance or facts.has("pci")
    store = _store(cx, svc)
    if existing:
        d.service(svc, change="change", by=("integration",),
                  responsibility=f"Owns payment state and the {provider} integration; initiates charges and refunds, receives {provider} webhooks")
    else:
        d.service(svc, change="add", by=("integration",),
                  responsibility=f"Initiates charges and refunds with {provider}, receives its webhooks, owns payment state")
        d.new_services.append((svc, f"Payment processing with {provider}"))
    d.service(svc, change="change" if existing else "add", store=store, by=("security", "dataflow"),
              responsibility="Keeps card tokens and payment records in its own store" + (" (PCI DSS scope)" if pci else ""))
    d.service(f"{svc}-db", change="add", kind="database", by=("security", "dataflow"),
              responsibility=f"{cx.db_engine} database owned by {svc} only")
    caller = orders or checkout
    d.edge(caller, svc, protocol=cx.sync_protocol, purpose="initiate a payment for an order", by=("integration",))
    if checkout and checkout != caller:
        d.edge(checkout, svc, protocol=cx.sync_protocol, purpose="payment status for the checkout page", by=("integration",))
    d.edge(svc, provider, protocol="REST", purpose=f"charge through the {provider} API", by=("integration",))
    d.edge(provider, svc, protocol="webhook", purpose=f"{provider} webhooks: payment succeeded / failed", by=("integration", "security"))
    d.edge(svc, f"{svc}-db", protocol="SQL", purpose="payment records", by=("dataflow", "security"))
    if cx.broker:
        d.edge(svc, cx.broker, protocol=proto, mode=mode, purpose="publish payment events", by=("dataflow",))
    consumers = [orders, cx.name_of("notifications")]
    fields = ["payment_id", "order_id", "amount", "currency", "status", "provider_ref"]
    d.event("payment.completed", producer=svc, consumers=consumers, fields=fields)
    d.event("payment.failed", producer=svc, consumers=consumers, fields=[*fields[:4], "reason"])
    d.owns("payments and card tokens", svc)
    d.touches += [x for x in (orders, checkout, provider) if x]
    if pci:
        d.risk(f"PCI DSS scope grows if card data passes through {caller or 'any caller'}: only {provider} tokens may leave {svc}", by=("security",))
    d.risk(f"{provider} webhooks are delivered at least once and out of order: handle them idempotently by event id", by=("integration", "dataflow"))
    if facts.latency:
        d.risk(f"The {provider} call sits on the payment path; keep it off the {facts.latency} synchronous budget by confirming asynchronously", by=("performance",))
    # Questions, grounded in the brief and the cluster.
    shared = cx.shared_database_rule()
    grounds: dict[str, Ground] = {}
    if pci:
        grounds["security"] = Ground(0, "PCI DSS is in the brief's constraints: a separate store keeps the audit scope to one service", ["brief:PCI DSS"])
    if shared:
        grounds["dataflow"] = Ground(0, f"{cx.database} is already shared ({shared}); payments must not add to it", [shared])
    d.questions.append(QuestionDraft(
        "payments.store",
        f"Does {svc} get its own database" + (" to keep PCI DSS scope isolated?" if pci else "?"),
        [f"A separate {cx.db_engine} database owned by {svc}", f"A {svc} schema in the shared {cx.database or 'database'}"],
        grounds,
    ))
    wh: dict[str, Ground] = {}
    if cx.gateway:
        wh["integration"] = Ground(0, f"{cx.gateway} already routes external traffic; one more route keeps one entry point", [f"inventory:{cx.gateway}"])
        wh["security"] = Ground(0, f"a signed endpoint behind {cx.gateway} keeps one TLS and auth boundary", [f"inventory:{cx.gateway}"])
    if cx.dominant:
        wh["pattern"] = Ground(0 if cx.dominant in ("REST", "gRPC") else 1, f"the cluster's dominant pattern is {cx.dominant}", ["PAT001"])
    d.questions.append(QuestionDraft(
        "payments.webhooks",
        f"How are {provider} webhooks received and deduplicated?",
        [f"A webhook endpoint on {svc} behind {cx.gateway or 'the edge'}, signature-checked, deduplicated by event id",
         f"A separate webhook receiver that queues each event on {cx.broker or 'a queue'} for {svc}"],
        wh,
    ))
    if caller and cx.broker:
        sync: dict[str, Ground] = {}
        if cx.uses("rest") or cx.uses("grpc"):
            sync["integration"] = Ground(0, f"the cluster calls synchronously ({cx.dominant}) and publishes state changes on {cx.broker}", ["PAT001"])
        if facts.latency:
            sync["performance"] = Ground(0, f"only initiation sits on the {facts.latency} path; the outcome arrives as an event", [f"brief:latency {facts.latency}"])
        sync["dataflow"] = Ground(0, f"payment outcomes are facts other services react to: events on {cx.broker}", [f"inventory:{cx.broker}"])
        d.questions.append(QuestionDraft(
            "payments.sync",
            f"How do {caller} and {svc} talk?",
            [f"{cx.sync_protocol} from {caller} to start a payment, events over {cx.broker} for the outcome",
             f"Events over {cx.broker} only", f"Synchronous {cx.sync_protocol} only"],
            sync,
        ))
    service_plan(d, cx, facts, svc, new=not existing, callers=[x for x in (caller, checkout) if x],
                 events=["payment.completed", "payment.failed"], secrets=f"the {provider} API key and webhook secret")
    d.task(f"webhook:{svc}", "security", svc, f"Register the {provider} webhook endpoint and verify its signatures with the webhook secret",
           f"A replayed or unsigned {provider} webhook is refused; a duplicate is ignored", after=[f"contracts:{svc}"])
    d.checks += ["Can initiate payments via API?", "Real-time status updates working?", f"{provider} webhooks handled and deduplicated?"]
    return d


@pattern("subscriptions", "Subscriptions and recurring billing", r"subscri", r"recurring", r"renewal", r"renew\b", r"billing cycle", r"monthly", r"weekly")
def subscriptions(cx: Cluster, facts: Facts) -> Draft:
    d = Draft("subscriptions", "Subscriptions and recurring billing")
    existing = cx.name_of("subscriptions")
    svc = existing or "subscriptions"
    orders, payments_svc, notif = cx.name_of("orders"), cx.name_of("payments") or "payments", cx.name_of("notifications")
    provider, _ = _provider(cx, facts, PAYMENT_PROVIDERS, "payment-provider")
    proto, mode = _async(cx)
    d.service(svc, change="change" if existing else "add", store=_store(cx, svc), by=("integration", "dataflow"),
              responsibility="Owns subscriptions (plan, cadence, next cycle, status) and starts each renewal cycle")
    if not existing:
        d.new_services.append((svc, "Subscriptions: cadence, renewals, pause/skip/cancel"))
        _own_database(d, cx, svc, holds="subscriptions and their cycles")
    d.edge(svc, orders, protocol=cx.sync_protocol, purpose="create the order of each cycle", by=("integration",))
    d.edge(svc, payments_svc, protocol=cx.sync_protocol, purpose="charge the saved payment method", by=("integration",))
    if cx.broker:
        d.edge(svc, cx.broker, protocol=proto, mode=mode, purpose="publish subscription events", by=("dataflow",))
    d.event("subscription.renewed", producer=svc, consumers=[orders, notif], fields=["subscription_id", "customer_id", "cycle", "order_id"])
    d.event("subscription.paused", producer=svc, consumers=[notif], fields=["subscription_id", "customer_id", "reason"])
    d.owns("subscriptions and their cycles", svc)
    d.touches += [x for x in (orders, payments_svc) if x]
    d.risk("A renewal that charges twice on a retry: the cycle id must be the payment's idempotency key", by=("dataflow", "integration"))
    g: dict[str, Ground] = {}
    if provider != "payment-provider" and facts.has(provider):
        g["integration"] = Ground(1, f"{provider} Billing already models cadences and dunning; {svc} mirrors its webhooks", [f"brief:{provider}"])
    g["dataflow"] = Ground(0, f"{svc} stays the owner of the cycle state the orders depend on", [])
    d.questions.append(QuestionDraft(
        "subscriptions.renewals", "What drives renewals?",
        [f"A scheduler inside {svc} that starts each cycle", f"{provider} subscriptions, with {svc} following their webhooks"], g,
    ))
    if not existing:
        _own_database_question(d, cx, svc, "subscriptions.store", performance=Ground(
            0, f"renewal runs are batch load; a store of its own keeps them off the shared {cx.database}", [cx.shared_database_rule()],
        ))
    service_plan(d, cx, facts, svc, new=not existing, callers=[x for x in (orders, payments_svc) if x],
                 events=["subscription.renewed", "subscription.paused"])
    d.checks += ["Can a customer subscribe, pause, skip and cancel a cycle?", "Does each cycle create one order and one charge, even on retries?"]
    return d


@pattern("reservations", "Reservations and holds", r"reserv", r"hold\b", r"holds\b", r"oversell", r"oversold", r"stock\b", r"inventory hold")
def reservations(cx: Cluster, facts: Facts) -> Draft:
    d = Draft("reservations", "Reservations and holds")
    inv = cx.name_of("inventory")
    orders, payments_svc = cx.name_of("orders"), cx.name_of("payments")
    if not inv:
        d.unknowns.append("Which service owns stock levels? The inventory declares no inventory or stock service.")
        return d
    proto, mode = _async(cx)
    d.service(inv, change="change", by=("integration", "dataflow"),
              responsibility="Reserves stock when a payment starts and releases it when the payment fails or the hold expires")
    existing_kind = cx.edge(orders, inv)
    sync_protocol = "gRPC" if existing_kind == "sync_grpc" else cx.sync_protocol
    d.edge(orders, inv, protocol=sync_protocol, change="change" if existing_kind else "add",
           purpose="reserve stock before payment (reservation step)", by=("integration",))
    if cx.broker:
        d.edge(orders, inv, protocol=proto, mode=mode, change="change" if existing_kind else "add",
               purpose="reserve stock asynchronously when the payment starts (reservation step)", by=("dataflow",))
    d.event("inventory.reserved", producer=inv, consumers=[orders, payments_svc], fields=["reservation_id", "order_id", "sku", "quantity", "expires_at"])
    d.event("inventory.released", producer=inv, consumers=[orders], fields=["reservation_id", "order_id", "reason"])
    if payments_svc:
        d.event("payment.failed", producer=payments_svc, consumers=[inv], fields=["payment_id", "order_id", "reason"])
    d.owns("stock reservations (holds with expiry)", inv)
    d.touches += [x for x in (orders, payments_svc) if x]
    d.risk(f"Holds that never expire lock stock: {inv} releases a reservation after its timeout", by=("dataflow", "performance"))
    g: dict[str, Ground] = {}
    if payments_svc:
        g["dataflow"] = Ground(0, "stock is held exactly while the payment is in flight", ["feedback" if facts.has("hold") else "brief"])
    g["performance"] = Ground(0, "short holds keep sellable stock high during flash sales", [])
    d.questions.append(QuestionDraft(
        "reservations.when", "When is stock reserved and released?",
        ["Reserve when the payment starts, release on payment.failed or after a timeout",
         "Reserve when the order is created, release on cancellation"], g,
    ))
    d.task(f"reservation:{inv}", "dataflow", inv, "Add the reservation step: reserve on payment start, release on payment.failed or expiry",
           "A failed payment releases its hold; no item is oversold under concurrent checkouts", after=[f"contracts:{inv}"])
    d.task(f"contracts:{inv}", "integration", inv, f"Extend the contract between {orders} and {inv} with reserve/release",
           f"Contract tests between {orders} and {inv} pass")
    d.checks += ["Is stock held during payment processing and released on failure?", "Can two concurrent checkouts oversell the last item?"]
    return d


@pattern("notifications", "Notifications", r"notif", r"e-?mail", r"sms\b", r"push notification", r"alert")
def notifications(cx: Cluster, facts: Facts) -> Draft:
    d = Draft("notifications", "Notifications")
    existing = cx.name_of("notifications")
    svc = existing or "notifications"
    provider, known = _provider(cx, facts, MESSAGE_PROVIDERS, "")
    d.service(svc, change="change" if existing else "add", by=("integration", "dataflow"),
              responsibility="Sends customer messages from domain events, with templates and delivery status")
    if not existing:
        d.new_services.append((svc, "Customer notifications"))
    if cx.broker:
        proto, mode = _async(cx)
        d.edge(cx.broker, svc, protocol=proto, mode=mode, purpose="consume domain events to notify", by=("dataflow",))
    else:
        # No broker to carry events: the services whose steps trigger a message call it.
        for source in _triggers(cx, facts, exclude=svc):
            d.edge(source, svc, protocol=cx.sync_protocol, purpose="send a customer notification", by=("integration",))
            d.touches.append(source)
        d.risk(f"Without a broker every notification is a synchronous {cx.sync_protocol} call on the caller's path", by=("performance", "dataflow"))
    if provider:
        d.edge(svc, provider, protocol="REST", purpose=f"deliver through {provider}", by=("integration",))
    elif not existing:
        d.unknowns.append("Which channel and provider deliver the notifications (email via SMTP, SendGrid, SMS via Twilio)?")
    if cx.broker:
        d.event("notification.sent", producer=svc, consumers=[], fields=["notification_id", "customer_id", "channel", "template"])
    d.owns("message templates and delivery status", svc)
    d.risk("Duplicate events send duplicate messages: deduplicate by event id before sending", by=("dataflow",))
    d.checks.append("Does each triggering event send exactly one message?")
    if not existing:
        service_plan(d, cx, facts, svc, new=True, callers=[], events=["notification.sent"])
    return d


@pattern("search", "Search indexing", r"search", r"full-?text", r"index(?:ing)?\b", r"elasticsearch", r"opensearch", r"autocomplete")
def search(cx: Cluster, facts: Facts) -> Draft:
    d = Draft("search", "Search indexing")
    catalog = cx.name_of("catalog")
    svc = cx.name_of("search") or "search"
    d.service(svc, change="add", store=f"{svc}-index (OpenSearch)", by=("integration", "dataflow"),
              responsibility="Serves search queries from its own index, kept up to date from catalogue changes")
    d.new_services.append((svc, "Search over the catalogue"))
    fronts = [cx.name_of("frontend")] if cx.name_of("frontend") else [g.name for g in cx.gateways]
    for front in fronts:
        d.edge(front, svc, protocol=cx.sync_protocol, purpose="search queries", by=("integration",))
    front = ", ".join(fronts)
    if catalog and cx.broker:
        d.event("catalog.item.updated", producer=catalog, consumers=[svc], fields=["sku", "title", "price", "updated_at"])
    g: dict[str, Ground] = {}
    if cx.broker:
        g["dataflow"] = Ground(0, f"{cx.broker} already carries state changes; the index follows them", [f"inventory:{cx.broker}"])
    d.questions.append(QuestionDraft(
        "search.freshness", f"How does the index follow {catalog or 'the catalogue'}?",
        [f"Events from {catalog or 'the owner'} on each change", "A periodic full reindex"], g,
    ))
    d.touches += [x for x in (catalog, *fronts) if x]
    service_plan(d, cx, facts, svc, new=True, callers=fronts, events=["catalog.item.updated"])
    d.checks.append("Does a catalogue change show up in search within the agreed delay?")
    return d


@pattern("audit", "Audit trail and retention", r"audit", r"retention", r"retain", r"gdpr", r"hipaa", r"history of", r"compliance log")
def audit(cx: Cluster, facts: Facts) -> Draft:
    d = Draft("audit", "Audit trail and retention")
    svc = cx.name_of("audit") or "audit-log"
    retention = next((c.value for c in facts.constraints if c.kind == "retention"), "")
    d.service(svc, change="add", store=f"{svc}-db ({cx.db_engine}, append-only)", by=("dataflow", "security"),
              responsibility="Keeps an append-only record of domain events for audit" + (f", for {retention}" if retention else ""))
    d.new_services.append((svc, "Audit trail"))
    if cx.broker:
        proto, mode = _async(cx)
        d.edge(cx.broker, svc, protocol=proto, mode=mode, purpose="record every domain event", by=("dataflow",))
    d.owns("audit records", svc)
    if not retention:
        d.unknowns.append("How long must audit records be kept, and who may read them?")
    d.questions.append(QuestionDraft(
        "audit.retention", "Where are audit records kept, and for how long?",
        [f"In {svc}'s own store for {retention or 'the retention period'}",
         f"Hot in {svc} for 90 days, then archived to object storage until {retention or 'the retention period'} ends"], {},
    ))
    d.risk("Personal data in audit records must follow the erasure rules (GDPR) or be pseudonymised", by=("security",))
    service_plan(d, cx, facts, svc, new=True, callers=[], events=[])
    d.checks.append("Is every audited action recorded once, and unreadable to services that do not own it?")
    return d


@pattern("identity", "Identity and sign-in", r"sign-?in", r"login", r"log in", r"sso\b", r"oauth", r"oidc", r"identity", r"single sign")
def identity(cx: Cluster, facts: Facts) -> Draft:
    d = Draft("identity", "Identity and sign-in")
    users = cx.name_of("users")
    svc = users or "identity"
    d.service(svc, change="change" if users else "add", by=("security", "integration"),
              responsibility="Issues and verifies customer identities (OIDC), owns credentials and sessions")
    if not users:
        d.new_services.append((svc, "Identity provider"))
    if cx.gateway:
        d.edge(cx.gateway, svc, protocol=cx.sync_protocol, purpose="verify tokens at the edge", by=("security",))
    auth = sorted({a for s in cx.inventory.services for a in (s.patterns.get("auth") or [])})
    g: dict[str, Ground] = {}
    if "jwt" in auth:
        g["pattern"] = Ground(0, "the cluster already verifies JWTs", ["PAT004"])
        g["security"] = Ground(0, "signed tokens verified at the gateway keep one auth boundary", [])
    d.questions.append(QuestionDraft(
        "identity.tokens", "How do services verify who is calling?",
        ["Signed JWTs verified at the gateway and in each service", "Opaque tokens introspected against the identity service"], g,
    ))
    d.owns("credentials and sessions", svc)
    d.touches += [x for x in (cx.gateway,) if x]
    d.checks.append("Can a customer sign in, and is an expired token refused everywhere?")
    return d


@pattern("files", "File storage", r"upload", r"file", r"attachment", r"image", r"document", r"\bs3\b", r"object storage")
def files(cx: Cluster, facts: Facts) -> Draft:
    d = Draft("files", "File storage")
    svc = cx.name_of("media") or "media"
    d.service(svc, change="add", store="object storage bucket", by=("integration", "dataflow"),
              responsibility="Accepts uploads through signed URLs, scans them and serves them")
    d.new_services.append((svc, "File storage"))
    front = cx.name_of("frontend") or cx.gateway
    d.edge(front, svc, protocol=cx.sync_protocol, purpose="request signed upload URLs", by=("integration",))
    d.owns("uploaded files and their metadata", svc)
    d.risk("Uploaded files are untrusted: size limits, type checks and malware scanning before serving", by=("security",))
    d.unknowns.append("Which file types and sizes must be supported, and how long are files kept?")
    service_plan(d, cx, facts, svc, new=True, callers=[front] if front else [], events=[])
    d.checks.append("Can a user upload a file within the size limit, and is an oversized or unsafe file refused?")
    return d


@pattern("reporting", "Reporting and analytics", r"report", r"analytic", r"dashboard", r"kpi", r"metrics for", r"insight")
def reporting(cx: Cluster, facts: Facts) -> Draft:
    d = Draft("reporting", "Reporting and analytics")
    svc = cx.name_of("reporting") or "reporting"
    d.service(svc, change="add", store=f"{svc}-db ({cx.db_engine}, read model)", by=("dataflow", "integration"),
              responsibility="Builds read models for reports from domain events; never reads other services' tables")
    d.new_services.append((svc, "Reporting read models"))
    if cx.broker:
        proto, mode = _async(cx)
        d.edge(cx.broker, svc, protocol=proto, mode=mode, purpose="build read models from events", by=("dataflow",))
    g: dict[str, Ground] = {}
    shared = cx.shared_database_rule()
    if shared:
        g["dataflow"] = Ground(0, f"reading {cx.database} directly would add to {shared}", [shared])
    d.questions.append(QuestionDraft(
        "reporting.source", "Where do reports read their data?",
        [f"A read model in {svc} built from events", f"A read replica of {cx.database or 'the database'}"], g,
    ))
    d.owns("report read models", svc)
    service_plan(d, cx, facts, svc, new=True, callers=[], events=[])
    d.checks.append("Do report figures match the owning services' data after a replay?")
    return d


@pattern("scheduling", "Scheduled jobs", r"schedul", r"cron", r"nightly", r"every day", r"daily", r"reminder")
def scheduling(cx: Cluster, facts: Facts) -> Draft:
    d = Draft("scheduling", "Scheduled jobs")
    svc = cx.name_of("scheduler") or "scheduler"
    d.service(svc, change="add", by=("integration", "devops"),
              responsibility="Runs scheduled jobs once per period across replicas and publishes their triggers")
    d.new_services.append((svc, "Scheduled jobs"))
    if cx.broker:
        proto, mode = _async(cx)
        d.edge(svc, cx.broker, protocol=proto, mode=mode, purpose="publish job triggers", by=("dataflow",))
    d.risk("Two replicas firing the same job: take a lock or a lease per run", by=("devops", "performance"))
    d.checks.append("Does each scheduled job run exactly once per period, even with two replicas?")
    return d


@pattern("reliability", "Reliable delivery", r"never lost", r"never be lost", r"guarantee", r"exactly[- ]once", r"at[- ]least[- ]once", r"reliab")
def reliability(cx: Cluster, facts: Facts) -> Draft:
    d = Draft("reliability", "Reliable delivery")
    orders = cx.name_of("orders")
    g: dict[str, Ground] = {}
    if cx.broker:
        g["dataflow"] = Ground(0, f"every producer already writes to {cx.broker}; an outbox makes that write atomic with its state", [f"inventory:{cx.broker}"])
    d.questions.append(QuestionDraft(
        "reliability.style", "How is a state change never lost on its way to other services?",
        [f"A transactional outbox in each producer, idempotent consumers on {cx.broker or 'the broker'}",
         f"A saga coordinated by {orders or 'one service'}, with compensating steps"], g,
    ))
    d.risk("Consumers see each event at least once: every handler is idempotent", by=("dataflow",))
    d.checks.append("Does a killed producer lose no event (outbox replayed)?")
    return d


# "Add a loyalty points service that …": the words between the verb and "service" name it;
# "add a new service" names none (its first word is one that says what kind, not what for).
_NOT_A_NAME = ("a", "an", "the", "new", "small", "separate", "dedicated", "standalone", "simple", "own", "backend", "web", "micro")
_NAMED = re.compile(
    r"\b(?:add|introduce|create|build|launch|set up|stand up)\w*\s+(?:an?\s+|the\s+)?"
    rf"(?:(?:{'|'.join(_NOT_A_NAME)})\s+)*((?!(?:{'|'.join(_NOT_A_NAME)})\b)(?:[a-z][a-z0-9]*[\s-]+){{1,3}}?)(?:micro)?service\b"
)
_CLAUSE = re.compile(r"^\s*(?:that|which|to|for|so that)\s+(.+?)(?:[.;\n]|$)")
_ASKS_FOR_CLIENTS = ("customer", "user", "client", "shopper", "member", "buyer", "lets ", "let ", "allow")


def named_service(text: str) -> tuple[str, str, str] | None:
    """(service name, its domain in words, what the requirement says it does) for a requirement
    that names a service to add, or None."""
    for m in _NAMED.finditer(text.lower()):
        domain = [w for w in re.split(r"[\s-]+", m.group(1)) if w and w not in _NOT_A_NAME]
        if domain:
            clause = _CLAUSE.match(text[m.end():])
            return "-".join(domain), " ".join(domain), clause.group(1).strip()[:160] if clause else ""
    return None


@pattern("named-service", "A service the requirement names", _NAMED.pattern[2:], fallback=True)
def named(cx: Cluster, facts: Facts) -> Draft:
    """A service outside the catalogue, which the requirement names ("a loyalty points service
    that awards points for completed orders"): the service with a store of its own, the existing
    services the requirement names as its partners, each reached the cluster's way (its
    synchronous protocol, and its broker when it has one: the two become a key question), the
    gateway when clients use it, and the plan of any new service. What the words cannot say
    (its data, the events it needs) is asked of the USER."""
    found = named_service(facts.text)
    if found is None:
        return Draft("named-service", "A service the requirement names")
    name, domain, does = found
    d = Draft("named-service", f"The {domain} service")
    existing = cx.domain(domain.split()[0])
    existing = existing if existing is not None and existing.kind == "service" else None
    svc, new = (existing.name, False) if existing else (name, True)
    responsibility = f"Owns {domain}" + (f": {does}" if does else " and its data")
    d.service(svc, change="add" if new else "change", store=_store(cx, svc) if new else "", by=("integration", "dataflow"),
              responsibility=responsibility)
    if new:
        d.new_services.append((svc, responsibility))
        _own_database(d, cx, svc, holds=f"{domain} data")
    d.owns(f"{domain} data", svc)
    partners = _triggers(cx, facts, exclude=svc)
    proto, mode = _async(cx)
    for partner in partners:
        d.edge(partner, svc, protocol=cx.sync_protocol, purpose=f"tell {svc} what happens in {partner}", by=("integration",))
        if cx.broker:  # the same edge the cluster's other way: a key question, not a silent pick
            d.edge(partner, svc, protocol=proto, mode=mode, purpose=f"{svc} consumes the events of {partner} from {cx.broker}", by=("dataflow",))
    d.touches += partners
    clients = cx.gateway and facts.has(*_ASKS_FOR_CLIENTS)
    if clients:
        d.edge(cx.gateway, svc, protocol=cx.sync_protocol, purpose=f"clients reach {domain} through {cx.gateway}", by=("integration", "security"))
        d.risk(f"{svc} is reachable by clients: {cx.gateway} authenticates every request before it", by=("security",))
    if partners:
        d.risk(f"{svc} keeps its own record of what {', '.join(partners)} did: it must not double-count a retried or repeated event",
               by=("dataflow",))
        d.unknowns.append(
            f"Which state changes of {', '.join(partners)} does {svc} need, and which data does it own apart from theirs?"
        )
    else:
        d.unknowns.append(f"Which existing services does {svc} depend on, and which call it?")
    if new:
        _own_database_question(d, cx, svc, f"{svc}.store")
        service_plan(d, cx, facts, svc, new=True, callers=partners + ([cx.gateway] if clients else []), events=[])
    d.checks.append(f"Does {svc} do what the requirement asks{': ' + does if does else ''}?")
    return d


def latency_ms(value: str) -> float | None:
    m = re.match(r"([\d.]+)\s*(ms|s)", value)
    if not m:
        return None
    return float(m[1]) * (1000 if m[2] == "s" else 1)
