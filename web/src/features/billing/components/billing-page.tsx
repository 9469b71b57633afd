import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useId, useState, type FormEvent } from "react";
import { useSearchParams } from "react-router-dom";
import { Button, ui } from "@/components/ui";
import type { BillingInterval, Invoice, Payment, Plan, Subscription } from "@/lib/api-types";
import {
  useCancelSubscription,
  useCheckout,
  useInvoices,
  useMe,
  usePayments,
  usePlans,
  usePortal,
  useResumeSubscription,
  useSubscription,
} from "../api/billing";
import { BillingAlert } from "./billing-problem";
import styles from "./billing-page.module.css";

/** How often the page asks again after a checkout, and for how long. */
export const CHECKOUT_POLL_MS = 2_000;
export const CHECKOUT_WAIT_MS = 30_000;

const number = new Intl.NumberFormat("en-US");
const day = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleDateString("en-US", { dateStyle: "medium" }) : "—");

/** A subscription that gives its plan: the user is on Free otherwise. */
const LIVE = ["active", "past_due"];
/** One that a new checkout may replace (any other is changed in the portal). */
const ENDED = ["none", "canceled"];

const STATUS: Record<string, string> = {
  none: "No subscription",
  active: "Active",
  past_due: "Payment overdue",
  unpaid: "Unpaid",
  paused: "Paused",
  canceled: "Ended",
};

/** A decimal string as cents, to compare prices without a float. */
function cents(amount: string): bigint {
  const [whole = "0", fraction = ""] = amount.split(".");
  return BigInt(whole) * 100n + BigInt((fraction + "00").slice(0, 2));
}

const isFree = (plan: Plan) => cents(plan.monthlyPrice) === 0n;

/** The plans' feature keys, as a person reads them; an unknown one from its key. */
const FEATURES: Record<string, string> = {
  standard_models: "Standard models",
  advanced_models: "Advanced models",
  conversation_history: "Conversation history",
  conversation_export: "Export conversations",
  email_support: "Email support",
  priority_support: "Priority support",
};
export function featureLabel(key: string): string {
  if (FEATURES[key]) return FEATURES[key];
  const words = key.replace(/[_-]+/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function money(amount: string, currency = "USD"): string {
  return currency.toUpperCase() === "USD" ? `$${amount}` : `${amount} ${currency.toUpperCase()}`;
}

export function BillingPage() {
  const [params] = useSearchParams();
  const checkout = params.get("checkout");
  const client = useQueryClient();
  // After a paid checkout the webhook moves the subscription, then identity
  // the plan tier of /me: both are asked again until they agree, for a while.
  const [waiting, setWaiting] = useState(checkout === "success");
  const [timedOut, setTimedOut] = useState(false);
  const poll = waiting ? CHECKOUT_POLL_MS : false;
  const subscription = useSubscription(poll);
  const me = useMe(poll);
  const sub = subscription.data;
  const settled = !!sub && LIVE.includes(sub.status) && me.data?.planTier === sub.plan.toUpperCase();

  useEffect(() => {
    if (!waiting) return;
    const timer = setTimeout(() => {
      setWaiting(false);
      setTimedOut(true);
    }, CHECKOUT_WAIT_MS);
    return () => clearTimeout(timer);
  }, [waiting]);
  useEffect(() => {
    if (waiting && settled) {
      setWaiting(false);
      void client.invalidateQueries({ queryKey: ["billing", "/billing/invoices"] });
      void client.invalidateQueries({ queryKey: ["billing", "/billing/payments"] });
    }
  }, [waiting, settled, client]);

  return (
    <div className={`${ui.page} ${styles.page}`}>
      <h1>Plans &amp; billing</h1>
      {checkout === "success" && (
        <p role="status" className={styles.notice}>
          {waiting
            ? "Payment received, your plan will update in a moment…"
            : settled && sub
              ? `Payment received: you are on ${sub.plan} now. Thank you!`
              : timedOut
                ? "Payment received. Your plan has not updated yet; reload this page in a minute."
                : "Payment received."}
        </p>
      )}
      {checkout === "canceled" && (
        <p role="status" className={`${styles.notice} ${styles.calm}`}>
          Checkout canceled: nothing was charged, and your plan is unchanged.
        </p>
      )}
      <CurrentPlan subscription={sub} problem={subscription.error?.problem} loading={subscription.isPending} />
      <Plans subscription={sub} />
      <Invoices />
      <Payments />
    </div>
  );
}

function CurrentPlan({
  subscription,
  problem,
  loading,
}: {
  subscription: Subscription | undefined;
  problem: Parameters<typeof BillingAlert>[0]["problem"];
  loading: boolean;
}) {
  const portal = usePortal();
  const cancel = useCancelSubscription();
  const resume = useResumeSubscription();
  const [confirming, setConfirming] = useState(false);
  const [reason, setReason] = useState("");
  const reasonId = useId();
  const s = subscription;
  const live = !!s && LIVE.includes(s.status);
  const plan = live ? s.plan : "Free";

  const submitCancel = (e: FormEvent) => {
    e.preventDefault();
    cancel.mutate({ reason: reason.trim() || undefined }, { onSuccess: () => setConfirming(false) });
  };

  return (
    <section className={styles.section} aria-labelledby="current-title">
      <h2 id="current-title">Your plan</h2>
      <BillingAlert problem={problem ?? portal.error?.problem ?? cancel.error?.problem ?? resume.error?.problem} />
      {loading && <p>Loading…</p>}
      {s && (
        <>
          <dl className={styles.facts}>
            <dt>Plan</dt>
            <dd data-testid="current-plan">{plan}</dd>
            <dt>Status</dt>
            <dd>{STATUS[s.status] ?? s.status}</dd>
            {s.status !== "none" && s.currentPeriodEnd && (
              <>
                <dt>{s.status === "canceled" ? "Ended" : "Current period"}</dt>
                <dd>{s.status === "canceled" ? day(s.currentPeriodEnd) : `${day(s.currentPeriodStart)} – ${day(s.currentPeriodEnd)}`}</dd>
              </>
            )}
            {s.trialEndsAt && live && (
              <>
                <dt>Trial</dt>
                <dd>ends on {day(s.trialEndsAt)}</dd>
              </>
            )}
          </dl>
          {live && s.cancelAtPeriodEnd && (
            <p>
              <strong>Cancels on {day(s.currentPeriodEnd)}</strong>: you keep {s.plan} until then, then move to Free.
            </p>
          )}
          <div className={styles.row}>
            {s.status !== "none" && (
              <Button variant="secondary" disabled={portal.isPending} onClick={() => portal.mutate()}>
                {portal.isPending ? "Opening…" : "Manage payment methods"}
              </Button>
            )}
            {live && !s.cancelAtPeriodEnd && !confirming && (
              <Button variant="secondary" onClick={() => setConfirming(true)}>
                Cancel at period end…
              </Button>
            )}
            {live && s.cancelAtPeriodEnd && (
              <Button disabled={resume.isPending} onClick={() => resume.mutate()}>
                {resume.isPending ? "Resuming…" : "Resume subscription"}
              </Button>
            )}
          </div>
          {confirming && (
            <form onSubmit={submitCancel} aria-labelledby="cancel-title" className={styles.confirm}>
              <h3 id="cancel-title">Cancel {s.plan}?</h3>
              <p>
                You keep {s.plan} until {day(s.currentPeriodEnd)}; then your account moves to Free. You can resume until
                then.
              </p>
              <label htmlFor={reasonId}>Why are you leaving? (optional)</label>
              <textarea
                id={reasonId}
                className={styles.reason}
                maxLength={500}
                value={reason}
                onChange={(e) => setReason(e.target.value)}
                autoFocus
              />
              <div className={styles.row}>
                <Button type="submit" variant="danger" disabled={cancel.isPending}>
                  {cancel.isPending ? "Cancelling…" : "Cancel at period end"}
                </Button>
                <Button variant="secondary" onClick={() => setConfirming(false)}>
                  Keep my plan
                </Button>
              </div>
            </form>
          )}
        </>
      )}
    </section>
  );
}

function Plans({ subscription }: { subscription: Subscription | undefined }) {
  const plans = usePlans();
  const checkout = useCheckout();
  const portal = usePortal();
  const [interval, setBillingInterval] = useState<BillingInterval>("month");
  const live = !!subscription && LIVE.includes(subscription.status);
  const current = live ? subscription.plan : "Free";
  const canCheckout = !!subscription && ENDED.includes(subscription.status);
  const items = [...(plans.data?.items ?? [])].sort((a, b) => (cents(a.monthlyPrice) < cents(b.monthlyPrice) ? -1 : 1));

  return (
    <section className={styles.section} aria-labelledby="plans-title">
      <h2 id="plans-title">Plans</h2>
      <BillingAlert problem={plans.error?.problem ?? checkout.error?.problem ?? portal.error?.problem} />
      <fieldset className={styles.interval}>
        <legend>Billing</legend>
        <label>
          <input type="radio" name="interval" value="month" checked={interval === "month"} onChange={() => setBillingInterval("month")} />
          Monthly
        </label>
        <label>
          <input type="radio" name="interval" value="year" checked={interval === "year"} onChange={() => setBillingInterval("year")} />
          Yearly
        </label>
      </fieldset>
      {plans.isPending && <p>Loading…</p>}
      <ul className={styles.plans}>
        {items.map((plan) => {
          const isCurrent = plan.name === current;
          const price = interval === "year" ? plan.yearlyPrice : plan.monthlyPrice;
          const headingId = `plan-${plan.id}`;
          return (
            <li key={plan.id} className={styles.plan} data-current={isCurrent} aria-labelledby={headingId}>
              <h3 id={headingId}>{plan.name}</h3>
              {isCurrent && <span className={styles.badge}>Current plan</span>}
              <p className={styles.price}>
                {isFree(plan) ? (
                  "$0"
                ) : price ? (
                  <>
                    {money(price)} <small>/ {interval === "year" ? "year" : "month"}</small>
                  </>
                ) : (
                  <small>Monthly billing only</small>
                )}
              </p>
              <ul className={styles.features}>
                <li>{number.format(plan.monthlyTokenQuota)} tokens a month</li>
                <li>{plan.maxConversations == null ? "Unlimited conversations" : `Up to ${number.format(plan.maxConversations)} conversations`}</li>
                <li>
                  {plan.maxMessagesPerConversation == null
                    ? "Unlimited messages per conversation"
                    : `Up to ${number.format(plan.maxMessagesPerConversation)} messages per conversation`}
                </li>
                {plan.features.map((f) => (
                  <li key={f}>{featureLabel(f)}</li>
                ))}
              </ul>
              {!isCurrent && !isFree(plan) && canCheckout && (
                <Button
                  disabled={!price || checkout.isPending}
                  onClick={() => checkout.mutate({ planId: plan.id, interval })}
                  aria-label={`Upgrade to ${plan.name}`}
                >
                  {checkout.isPending && checkout.variables?.planId === plan.id ? "Opening checkout…" : `Upgrade to ${plan.name}`}
                </Button>
              )}
              {!isCurrent && !isFree(plan) && live && (
                <Button variant="secondary" disabled={portal.isPending} onClick={() => portal.mutate()}>
                  Switch in the billing portal
                </Button>
              )}
            </li>
          );
        })}
      </ul>
    </section>
  );
}

function LoadMore({ more, loading, onClick, what }: { more: boolean; loading: boolean; onClick: () => void; what: string }) {
  if (!more) return null;
  return (
    <Button variant="secondary" disabled={loading} onClick={onClick} aria-label={`Load more ${what}`}>
      {loading ? "Loading…" : "Load more"}
    </Button>
  );
}

const INVOICE_STATUS: Record<string, string> = { draft: "Draft", open: "Open", paid: "Paid", void: "Void", uncollectible: "Uncollectible" };
const PAYMENT_STATUS: Record<string, string> = { succeeded: "Succeeded", failed: "Failed", pending: "Pending", refunded: "Refunded" };

function Invoices() {
  const invoices = useInvoices();
  const items: Invoice[] = invoices.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <section className={styles.section} aria-labelledby="invoices-title">
      <h2 id="invoices-title">Invoices</h2>
      <BillingAlert problem={invoices.error?.problem} />
      {invoices.isPending && <p>Loading…</p>}
      {invoices.isSuccess && items.length === 0 && <p className={ui.hint}>No invoices yet.</p>}
      {items.length > 0 && (
        <div className={styles.tableWrap} tabIndex={0} role="region" aria-label="Invoices table">
          <table className={styles.table}>
            <thead>
              <tr>
                <th scope="col">Number</th>
                <th scope="col">Date</th>
                <th scope="col" className={styles.num}>
                  Total
                </th>
                <th scope="col">Status</th>
                <th scope="col">PDF</th>
              </tr>
            </thead>
            <tbody>
              {items.map((i) => (
                <tr key={i.id}>
                  <td>{i.invoiceNumber}</td>
                  <td>{day(i.paidAt ?? i.dueDate)}</td>
                  <td className={styles.num}>{money(i.total)}</td>
                  <td>{INVOICE_STATUS[i.status] ?? i.status}</td>
                  <td>
                    {i.pdfUrl ? (
                      <a href={i.pdfUrl} target="_blank" rel="noreferrer">
                        PDF<span className="visually-hidden"> of invoice {i.invoiceNumber}</span>
                      </a>
                    ) : (
                      "—"
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <LoadMore
        what="invoices"
        more={!!invoices.hasNextPage}
        loading={invoices.isFetchingNextPage}
        onClick={() => void invoices.fetchNextPage()}
      />
    </section>
  );
}

function Payments() {
  const payments = usePayments();
  const items: Payment[] = payments.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <section className={styles.section} aria-labelledby="payments-title">
      <h2 id="payments-title">Payments</h2>
      <BillingAlert problem={payments.error?.problem} />
      {payments.isPending && <p>Loading…</p>}
      {payments.isSuccess && items.length === 0 && <p className={ui.hint}>No payments yet.</p>}
      {items.length > 0 && (
        <div className={styles.tableWrap} tabIndex={0} role="region" aria-label="Payments table">
          <table className={styles.table}>
            <thead>
              <tr>
                <th scope="col">Date</th>
                <th scope="col">Description</th>
                <th scope="col" className={styles.num}>
                  Amount
                </th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {items.map((p) => (
                <tr key={p.id}>
                  <td>{day(p.createdAt)}</td>
                  <td>{p.description ?? "—"}</td>
                  <td className={styles.num}>{money(p.amount, p.currency)}</td>
                  <td>{PAYMENT_STATUS[p.status] ?? p.status}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <LoadMore
        what="payments"
        more={!!payments.hasNextPage}
        loading={payments.isFetchingNextPage}
        onClick={() => void payments.fetchNextPage()}
      />
    </section>
  );
}
