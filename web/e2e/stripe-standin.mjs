// A local stand-in for Stripe, for the end-to-end run (deploy/local/e2e.sh
// with E2E_STRIPE=1): the API calls billing makes (crates/billing/src/stripe/
// client.rs), in Stripe's wire format (form-encoded requests with bracketed
// keys, JSON objects shaped as docs.stripe.com/api documents them for API
// version 2025-11-17.clover), kept in memory; and a payment page standing in
// for Stripe Checkout. Paying there creates the subscription, sends the
// webhooks Stripe sends for a first subscription payment, signed as Stripe
// signs them, to the gateway's POST /webhooks/stripe, then sends the browser
// back to the session's success_url.
//
//   STRIPE_STANDIN_ADDR=127.0.0.1:12111 \
//   STRIPE_WEBHOOK_URL=http://127.0.0.1:8080/webhooks/stripe \
//   STRIPE_WEBHOOK_SECRET=whsec_e2e node e2e/stripe-standin.mjs
//
// Secret keys must start with sk_test_ (as a test-mode key does). Only
// node: modules.
import { createHmac, randomBytes } from "node:crypto";
import http from "node:http";

const [host, port] = (process.env.STRIPE_STANDIN_ADDR ?? "127.0.0.1:12111").split(":");
const WEBHOOK_URL = process.env.STRIPE_WEBHOOK_URL ?? "http://127.0.0.1:8080/webhooks/stripe";
const WEBHOOK_SECRET = process.env.STRIPE_WEBHOOK_SECRET ?? "whsec_e2e";
const API_VERSION = "2025-11-17.clover";
const BASE = `http://${host}:${port}`;

const now = () => Math.floor(Date.now() / 1000);
const id = (prefix) => `${prefix}_${randomBytes(12).toString("base64url").replace(/[-_]/g, "x").slice(0, 14)}`;
const log = (...args) => console.log("[stripe-standin]", ...args);

// Everything Stripe would keep, by id.
const products = new Map();
const prices = new Map();
const customers = new Map();
const sessions = new Map();
const subscriptions = new Map();
const invoices = new Map();
/** Idempotency-Key → the first answer to it (Stripe replays it for 24 h). */
const idempotent = new Map();

class StripeError extends Error {
  constructor(status, type, message, extra = {}) {
    super(message);
    this.status = status;
    this.body = { error: { type, message, ...extra } };
  }
}
const missing = (what, value) =>
  new StripeError(404, "invalid_request_error", `No such ${what}: '${value}'`, { code: "resource_missing", param: "id" });
const required = (param) =>
  new StripeError(400, "invalid_request_error", `Missing required param: ${param}.`, { code: "parameter_missing", param });

/** Form fields as Stripe reads them: `metadata[userId]` → metadata.userId; `lookup_keys[]` → an array. */
function params(search) {
  const out = {};
  for (const [key, value] of new URLSearchParams(search)) {
    if (key.endsWith("[]")) (out[key.slice(0, -2)] ??= []).push(value);
    else out[key] = value;
  }
  return out;
}
function nested(fields, prefix) {
  const out = {};
  for (const [key, value] of Object.entries(fields)) {
    const m = key.match(new RegExp(`^${prefix.replace(/[[\]]/g, "\\$&")}\\[([^\\]]+)\\]$`));
    if (m) out[m[1]] = value;
  }
  return out;
}
const list = (data, url, hasMore = false) => ({ object: "list", data, has_more: hasMore, url });

function priceObject(fields) {
  const product = fields.product ?? required("product");
  if (typeof product !== "string") throw product;
  if (!products.has(product)) throw missing("product", product);
  if (fields.unit_amount === undefined || !/^\d+$/.test(fields.unit_amount)) throw required("unit_amount");
  const lookupKey = fields.lookup_key ?? null;
  if (lookupKey) {
    for (const other of prices.values()) {
      if (other.lookup_key !== lookupKey) continue;
      if (fields.transfer_lookup_key !== "true") {
        throw new StripeError(400, "invalid_request_error", `A price (\`${other.id}\`) already uses that lookup key.`, {
          param: "lookup_key",
        });
      }
      other.lookup_key = null;
    }
  }
  const amount = Number(fields.unit_amount);
  const interval = fields["recurring[interval]"];
  return {
    id: id("price"),
    object: "price",
    active: true,
    billing_scheme: "per_unit",
    created: now(),
    currency: (fields.currency ?? "usd").toLowerCase(),
    custom_unit_amount: null,
    livemode: false,
    lookup_key: lookupKey,
    metadata: nested(fields, "metadata"),
    nickname: fields.nickname ?? null,
    product,
    recurring: interval
      ? { interval, interval_count: 1, meter: null, trial_period_days: null, usage_type: "licensed" }
      : null,
    tax_behavior: "unspecified",
    tiers_mode: null,
    transform_quantity: null,
    type: interval ? "recurring" : "one_time",
    unit_amount: amount,
    unit_amount_decimal: String(amount),
  };
}

/** The end of a period of `interval` from `start` (Unix seconds). */
function periodEnd(start, interval) {
  const d = new Date(start * 1000);
  if (interval === "year") d.setUTCFullYear(d.getUTCFullYear() + 1);
  else d.setUTCMonth(d.getUTCMonth() + 1);
  return Math.floor(d.getTime() / 1000);
}

function subscriptionObject(session) {
  const price = prices.get(session.line_items_price);
  const start = now();
  const end = periodEnd(start, price.recurring?.interval ?? "month");
  const subId = id("sub");
  return {
    id: subId,
    object: "subscription",
    application: null,
    billing_cycle_anchor: start,
    cancel_at: null,
    cancel_at_period_end: false,
    canceled_at: null,
    cancellation_details: { comment: null, feedback: null, reason: null },
    collection_method: "charge_automatically",
    created: start,
    currency: price.currency,
    customer: session.customer,
    default_payment_method: id("pm"),
    ended_at: null,
    items: {
      object: "list",
      data: [
        {
          id: id("si"),
          object: "subscription_item",
          created: start,
          current_period_end: end,
          current_period_start: start,
          metadata: {},
          price,
          quantity: 1,
          subscription: subId,
          tax_rates: [],
        },
      ],
      has_more: false,
      total_count: 1,
      url: `/v1/subscription_items?subscription=${subId}`,
    },
    latest_invoice: null,
    livemode: false,
    metadata: session.subscription_metadata,
    start_date: start,
    status: "active",
    trial_end: null,
    trial_start: null,
  };
}

function invoiceObject(subscription, customer) {
  const item = subscription.items.data[0];
  const amount = item.price.unit_amount;
  const invId = id("in");
  customer.invoice_sequence += 1;
  const number = `${customer.invoice_prefix}-${String(customer.invoice_sequence).padStart(4, "0")}`;
  const created = now();
  return {
    id: invId,
    object: "invoice",
    account_country: "US",
    account_name: "AI Chat (stand-in)",
    amount_due: amount,
    amount_overpaid: 0,
    amount_paid: 0,
    amount_remaining: amount,
    amount_shipping: 0,
    attempt_count: 0,
    attempted: false,
    auto_advance: false,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null, provider: null, status: null },
    billing_reason: "subscription_create",
    collection_method: "charge_automatically",
    created,
    currency: item.price.currency,
    customer: customer.id,
    customer_email: customer.email,
    customer_name: customer.name,
    description: null,
    discounts: [],
    due_date: null,
    effective_at: created,
    hosted_invoice_url: `${BASE}/invoices/${invId}`,
    invoice_pdf: `${BASE}/invoices/${invId}/pdf`,
    issuer: { type: "self" },
    lines: {
      object: "list",
      data: [
        {
          id: id("il"),
          object: "line_item",
          amount,
          currency: item.price.currency,
          description: `1 × ${products.get(item.price.product)?.name ?? "Plan"} (at $${(amount / 100).toFixed(2)} / ${item.price.recurring?.interval ?? "month"})`,
          period: { end: item.current_period_end, start: item.current_period_start },
          pricing: { price_details: { price: item.price.id, product: item.price.product }, type: "price_details", unit_amount_decimal: String(amount) },
          quantity: 1,
        },
      ],
      has_more: false,
      total_count: 1,
      url: `/v1/invoices/${invId}/lines`,
    },
    livemode: false,
    metadata: {},
    number,
    parent: {
      quote_details: null,
      subscription_details: { metadata: subscription.metadata, subscription: subscription.id },
      type: "subscription_details",
    },
    period_end: created,
    period_start: created,
    status: "open",
    status_transitions: { finalized_at: created, marked_uncollectible_at: null, paid_at: null, voided_at: null },
    subtotal: amount,
    subtotal_excluding_tax: amount,
    total: amount,
    total_discount_amounts: [],
    total_excluding_tax: amount,
    total_taxes: [],
    webhooks_delivered_at: created,
  };
}

function paymentIntentObject(invoice) {
  return {
    id: id("pi"),
    object: "payment_intent",
    amount: invoice.total,
    amount_capturable: 0,
    amount_received: invoice.total,
    capture_method: "automatic",
    confirmation_method: "automatic",
    created: now(),
    currency: invoice.currency,
    customer: invoice.customer,
    description: "Subscription creation",
    last_payment_error: null,
    latest_charge: id("ch"),
    livemode: false,
    metadata: {},
    payment_method: id("pm"),
    payment_method_types: ["card"],
    status: "succeeded",
  };
}

/** Sends one event as Stripe does: signed, and retried (here a few times) until a 2xx. */
async function deliver(type, object, previousAttributes) {
  const event = {
    id: id("evt"),
    object: "event",
    api_version: API_VERSION,
    created: now(),
    data: previousAttributes ? { object, previous_attributes: previousAttributes } : { object },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
  };
  const body = JSON.stringify(event);
  for (let attempt = 1; ; attempt++) {
    const t = now();
    const v1 = createHmac("sha256", WEBHOOK_SECRET).update(`${t}.${body}`).digest("hex");
    try {
      const res = await fetch(WEBHOOK_URL, {
        method: "POST",
        headers: { "Content-Type": "application/json; charset=utf-8", "Stripe-Signature": `t=${t},v1=${v1}`, "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)" },
        body,
      });
      if (res.ok) {
        log(`${type} ${event.id} → ${res.status}`);
        return;
      }
      log(`${type} ${event.id} → ${res.status} ${await res.text()}`);
    } catch (error) {
      log(`${type} ${event.id} not delivered: ${error}`);
    }
    if (attempt === 3) throw new Error(`${type} was refused three times`);
    await new Promise((r) => setTimeout(r, 500 * attempt));
  }
}

/** What a customer paying a Checkout Session sets off, in Stripe's order. */
async function pay(session) {
  const customer = customers.get(session.customer);
  const subscription = subscriptionObject(session);
  subscriptions.set(subscription.id, subscription);
  const invoice = invoiceObject(subscription, customer);
  subscription.latest_invoice = invoice.id;
  invoices.set(invoice.id, invoice);
  Object.assign(session, {
    status: "complete",
    payment_status: "paid",
    subscription: subscription.id,
    invoice: invoice.id,
    url: null,
  });
  await deliver("checkout.session.completed", publicSession(session));
  await deliver("customer.subscription.created", subscription);
  await deliver("invoice.finalized", { ...invoice });
  const paidAt = now();
  Object.assign(invoice, {
    status: "paid",
    amount_paid: invoice.total,
    amount_remaining: 0,
    attempt_count: 1,
    attempted: true,
    status_transitions: { ...invoice.status_transitions, paid_at: paidAt },
  });
  await deliver("invoice.paid", { ...invoice });
  await deliver("payment_intent.succeeded", paymentIntentObject(invoice));
}

function publicSession(s) {
  const rest = { ...s };
  delete rest.line_items_price;
  delete rest.subscription_metadata;
  return rest;
}

function updateSubscription(sub, fields) {
  const previous = {};
  if (fields.cancel_at_period_end !== undefined) {
    const cancel = fields.cancel_at_period_end === "true";
    previous.cancel_at_period_end = sub.cancel_at_period_end;
    previous.cancel_at = sub.cancel_at;
    sub.cancel_at_period_end = cancel;
    sub.cancel_at = cancel ? sub.items.data[0].current_period_end : null;
    sub.canceled_at = cancel ? now() : null;
    sub.cancellation_details = cancel
      ? { comment: fields["cancellation_details[comment]"] ?? null, feedback: null, reason: "cancellation_requested" }
      : { comment: null, feedback: null, reason: null };
  }
  return previous;
}

/** Stripe's API: answers the parsed call or throws a StripeError. */
function api(method, path, fields) {
  const parts = path.split("/").filter(Boolean); // ["v1", ...]
  const [, resource, key, sub] = parts;
  if (resource === "prices" && !key) {
    if (method === "GET") {
      const keys = fields.lookup_keys ?? [];
      const limit = Number(fields.limit ?? 10);
      const found = [...prices.values()].filter((p) => p.active && p.lookup_key && keys.includes(p.lookup_key));
      return list(found.slice(0, limit), "/v1/prices", found.length > limit);
    }
    if (method === "POST") {
      const price = priceObject(fields);
      prices.set(price.id, price);
      return price;
    }
  }
  if (resource === "products") {
    if (method === "POST" && !key) {
      if (!fields.name) throw required("name");
      const productId = fields.id ?? id("prod");
      if (products.has(productId)) {
        throw new StripeError(400, "invalid_request_error", `Product already exists.`, { code: "resource_already_exists", param: "id" });
      }
      const product = {
        id: productId,
        object: "product",
        active: true,
        created: now(),
        default_price: null,
        description: null,
        images: [],
        livemode: false,
        marketing_features: [],
        metadata: nested(fields, "metadata"),
        name: fields.name,
        package_dimensions: null,
        shippable: null,
        statement_descriptor: null,
        tax_code: null,
        type: "service",
        unit_label: null,
        updated: now(),
        url: null,
      };
      products.set(productId, product);
      return product;
    }
    if (method === "GET" && key) {
      const product = products.get(key);
      if (!product) throw missing("product", key);
      return product;
    }
  }
  if (resource === "customers" && method === "POST" && !key) {
    const customer = {
      id: id("cus"),
      object: "customer",
      address: null,
      balance: 0,
      created: now(),
      currency: null,
      default_source: null,
      delinquent: false,
      description: null,
      email: fields.email ?? null,
      invoice_prefix: randomBytes(4).toString("hex").toUpperCase(),
      invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
      livemode: false,
      metadata: nested(fields, "metadata"),
      name: fields.name ?? null,
      next_invoice_sequence: 1,
      phone: null,
      preferred_locales: [],
      shipping: null,
      tax_exempt: "none",
      test_clock: null,
    };
    customers.set(customer.id, { ...customer, invoice_sequence: 0 });
    return customer;
  }
  if (resource === "checkout" && key === "sessions" && method === "POST" && !sub) {
    for (const p of ["mode", "success_url", "line_items[0][price]"]) if (!fields[p]) throw required(p);
    const priceId = fields["line_items[0][price]"];
    const price = prices.get(priceId);
    if (!price) throw missing("price", priceId);
    if (fields.customer && !customers.has(fields.customer)) throw missing("customer", fields.customer);
    const sessionId = `cs_test_${randomBytes(24).toString("hex")}`;
    const session = {
      id: sessionId,
      object: "checkout.session",
      amount_subtotal: price.unit_amount,
      amount_total: price.unit_amount,
      cancel_url: fields.cancel_url ?? null,
      client_reference_id: fields.client_reference_id ?? null,
      created: now(),
      currency: price.currency,
      customer: fields.customer ?? null,
      customer_email: null,
      expires_at: now() + 24 * 3600,
      invoice: null,
      livemode: false,
      metadata: nested(fields, "metadata"),
      mode: fields.mode,
      payment_status: "unpaid",
      status: "open",
      subscription: null,
      success_url: fields.success_url,
      ui_mode: "hosted",
      url: `${BASE}/pay/${sessionId}`,
      // Kept for the payment, not answered.
      line_items_price: priceId,
      subscription_metadata: nested(fields, "subscription_data[metadata]"),
    };
    sessions.set(sessionId, session);
    return publicSession(session);
  }
  if (resource === "billing_portal" && key === "sessions" && method === "POST") {
    if (!fields.customer) throw required("customer");
    if (!customers.has(fields.customer)) throw missing("customer", fields.customer);
    const portalId = id("bps");
    return {
      id: portalId,
      object: "billing_portal.session",
      configuration: id("bpc"),
      created: now(),
      customer: fields.customer,
      flow: null,
      livemode: false,
      locale: null,
      on_behalf_of: null,
      return_url: fields.return_url ?? null,
      url: `${BASE}/portal/${portalId}?return_url=${encodeURIComponent(fields.return_url ?? "")}`,
    };
  }
  if (resource === "subscriptions") {
    if (method === "GET" && !key) {
      const status = fields.status;
      let found = [...subscriptions.values()]
        .filter((s) => !fields.customer || s.customer === fields.customer)
        .filter((s) => (status === "all" ? true : status ? s.status === status : s.status !== "canceled"))
        .sort((a, b) => b.created - a.created || (a.id < b.id ? 1 : -1));
      if (fields.starting_after) {
        const at = found.findIndex((s) => s.id === fields.starting_after);
        found = at >= 0 ? found.slice(at + 1) : [];
      }
      const limit = Number(fields.limit ?? 10);
      return list(found.slice(0, limit), "/v1/subscriptions", found.length > limit);
    }
    if (key) {
      const subscription = subscriptions.get(key);
      if (!subscription) throw missing("subscription", key);
      if (method === "GET") return subscription;
      if (method === "POST") {
        if (subscription.status === "canceled") {
          throw new StripeError(400, "invalid_request_error", "A canceled subscription can only update its cancellation_details and metadata.");
        }
        const previous = updateSubscription(subscription, fields);
        queueMicrotask(() => void deliver("customer.subscription.updated", structuredClone(subscription), previous).catch((e) => log(String(e))));
        return subscription;
      }
      if (method === "DELETE") {
        if (subscription.status === "canceled") throw missing("subscription", key);
        Object.assign(subscription, {
          status: "canceled",
          canceled_at: now(),
          ended_at: now(),
          cancellation_details: { comment: fields["cancellation_details[comment]"] ?? null, feedback: null, reason: "cancellation_requested" },
        });
        queueMicrotask(() => void deliver("customer.subscription.deleted", structuredClone(subscription)).catch((e) => log(String(e))));
        return subscription;
      }
    }
  }
  throw new StripeError(404, "invalid_request_error", `Unrecognized request URL (${method}: ${path}).`);
}

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
function page(res, status, title, body) {
  res.writeHead(status, { "Content-Type": "text/html; charset=utf-8" });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)}</title><style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}
button{font:inherit;padding:.5rem 1rem;background:#3b4fd8;color:#fff;border:0;border-radius:8px}</style></head>
<body><main>${body}</main></body></html>`);
}

/** The stand-in's Checkout page: what the customer sees, and paying. */
async function checkoutPage(req, res, sessionId) {
  const session = sessions.get(sessionId);
  if (!session) return page(res, 404, "Not found", "<h1>This checkout does not exist</h1>");
  if (req.method === "GET") {
    if (session.status !== "open") return page(res, 410, "Expired", "<h1>This checkout is complete</h1>");
    const price = prices.get(session.line_items_price);
    const product = products.get(price.product);
    return page(
      res,
      200,
      "Pay (Stripe stand-in)",
      `<h1>Subscribe to ${escape(product?.name ?? "the plan")}</h1>
<p>$${(price.unit_amount / 100).toFixed(2)} per ${escape(price.recurring?.interval ?? "month")} (Stripe stand-in, nothing is charged).</p>
<form method="post" action="/pay/${escape(sessionId)}"><button type="submit">Pay</button></form>
${session.cancel_url ? `<p><a href="${escape(session.cancel_url)}">Cancel</a></p>` : ""}`,
    );
  }
  if (req.method === "POST") {
    if (session.status !== "open") return page(res, 409, "Complete", "<h1>This checkout is complete</h1>");
    try {
      await pay(session);
    } catch (error) {
      log(`payment of ${sessionId} failed: ${error}`);
      return page(res, 502, "Failed", `<h1>The payment could not be completed</h1><p>${escape(error)}</p>`);
    }
    res.writeHead(303, { Location: session.success_url.replace("{CHECKOUT_SESSION_ID}", sessionId) });
    return res.end();
  }
  res.writeHead(405).end();
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url ?? "/", BASE);
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = Buffer.concat(chunks).toString("utf8");

  if (url.pathname === "/favicon.ico") return res.writeHead(204).end();
  const payMatch = url.pathname.match(/^\/pay\/([A-Za-z0-9_]+)$/);
  if (payMatch) return checkoutPage(req, res, payMatch[1]);
  if (url.pathname.startsWith("/portal/")) {
    const back = url.searchParams.get("return_url") ?? "";
    return page(res, 200, "Billing portal (Stripe stand-in)", `<h1>Billing portal</h1><p>The stand-in has no payment methods to manage.</p><p><a href="${escape(back)}">Return</a></p>`);
  }
  if (url.pathname.startsWith("/invoices/")) {
    return page(res, 200, "Invoice (Stripe stand-in)", `<h1>Invoice ${escape(url.pathname.split("/")[2])}</h1>`);
  }
  if (!url.pathname.startsWith("/v1/")) return page(res, 404, "Not found", "<h1>Not found</h1>");

  const requestId = id("req");
  const answer = (status, json) => {
    res.writeHead(status, { "Content-Type": "application/json", "Request-Id": requestId, "Stripe-Version": API_VERSION });
    res.end(JSON.stringify(json));
  };
  const auth = req.headers.authorization ?? "";
  if (!/^Bearer sk_test_\S+$/.test(auth)) {
    return answer(401, { error: { type: "invalid_request_error", message: "Invalid API Key provided." } });
  }
  const method = req.method ?? "GET";
  const key = method === "POST" ? req.headers["idempotency-key"] : undefined;
  const remembered = key ? idempotent.get(`${key}`) : undefined;
  if (remembered) {
    res.setHeader("Idempotent-Replayed", "true");
    return answer(remembered.status, remembered.json);
  }
  const fields = params(method === "POST" ? body : url.search);
  let status = 200;
  let json;
  try {
    json = api(method, url.pathname, fields);
  } catch (error) {
    if (!(error instanceof StripeError)) {
      log(`${method} ${url.pathname}: ${error?.stack ?? error}`);
      return answer(500, { error: { type: "api_error", message: "An error occurred with our connection to Stripe." } });
    }
    status = error.status;
    json = error.body;
  }
  log(`${method} ${url.pathname} → ${status}`);
  if (key) idempotent.set(`${key}`, { status, json });
  answer(status, json);
});

server.listen(Number(port), host, () => log(`listening on ${BASE}, webhooks to ${WEBHOOK_URL}`));
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)));
