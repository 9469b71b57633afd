import { act, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Invoice, Plan, Subscription, User } from "@/lib/api-types";
import { session } from "@/lib/session";
import { renderAt } from "@/test-utils";
import { BillingPage, CHECKOUT_POLL_MS, CHECKOUT_WAIT_MS } from "./billing-page";

const user: User = { id: "u", email: "ada@example.com", name: "Ada", planTier: "FREE", role: "user", emailVerified: true, createdAt: "" };
const plans: Plan[] = [
  { id: "p-pro", name: "Pro", monthlyPrice: "29.99", yearlyPrice: "299.00", monthlyTokenQuota: 1_000_000, maxConversations: null, maxMessagesPerConversation: null, features: ["Every model"] },
  { id: "p-free", name: "Free", monthlyPrice: "0.00", yearlyPrice: null, monthlyTokenQuota: 10_000, maxConversations: 10, maxMessagesPerConversation: 50, features: ["Basic models"] },
  { id: "p-plus", name: "Plus", monthlyPrice: "9.99", yearlyPrice: "99.00", monthlyTokenQuota: 200_000, maxConversations: 100, maxMessagesPerConversation: null, features: ["faster_replies", "priority_support"] },
];
const free: Subscription = { plan: "Free", status: "none", cancelAtPeriodEnd: false, currentPeriodStart: null, currentPeriodEnd: null, trialEndsAt: null };
const plus: Subscription = {
  plan: "Plus",
  status: "active",
  cancelAtPeriodEnd: false,
  currentPeriodStart: "2026-12-01T12:00:00Z",
  currentPeriodEnd: "2027-01-01T12:00:00Z",
  trialEndsAt: null,
};
const invoice = (n: number): Invoice => ({
  id: `inv-${n}`,
  invoiceNumber: `AB-000${n}`,
  subtotal: "9.99",
  tax: "0.00",
  total: "9.99",
  status: "paid",
  paidAt: "2026-12-01T12:00:00Z",
  dueDate: null,
  pdfUrl: `https://pay.example/invoice-${n}.pdf`,
});

type Init = RequestInit & { headers: Record<string, string> };
type Answer = (url: string, init: Init) => Response | undefined;

/** The gateway: `answer` first, else a Free user with no history. */
function backend(answer: Answer = () => undefined, state: { subscription: Subscription; me: User } = { subscription: free, me: user }) {
  const fetchMock = vi.fn(async (url: string, init: Init) => {
    const custom = answer(url, init);
    if (custom) return custom;
    const path = url.split("?")[0];
    if (path === "/api/v1/billing/plans") return Response.json({ items: plans });
    if (path === "/api/v1/billing/subscription") return Response.json(state.subscription);
    if (path === "/api/v1/me") return Response.json(state.me);
    if (path === "/api/v1/billing/invoices" || path === "/api/v1/billing/payments") return Response.json({ items: [], nextCursor: null });
    return new Response(null, { status: 404 });
  });
  vi.stubGlobal("fetch", fetchMock);
  return fetchMock;
}
const calls = (mock: ReturnType<typeof backend>, method: string, path: string) =>
  (mock.mock.calls as unknown as [string, Init][]).filter(([u, i]) => u.split("?")[0] === `/api/v1${path}` && (i.method ?? "GET") === method);
const problem = (status: number, code: string) => Response.json({ status, code, title: "t", detail: "d" }, { status });

beforeEach(() => session.set({ accessToken: "a", tokenType: "Bearer", expiresIn: 900, user }));
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
  session.clear();
  localStorage.clear();
});

describe("the billing page", () => {
  it("compares the plans, cheapest first, at the chosen interval, and shows the current one", async () => {
    backend();
    renderAt(<BillingPage />, "/billing");
    expect(screen.getByRole("heading", { level: 1, name: "Plans & billing" })).toBeInTheDocument();
    const cards = await screen.findAllByRole("listitem", { name: /^(Free|Plus|Pro)$/ });
    expect(cards.map((c) => within(c).getByRole("heading").textContent)).toEqual(["Free", "Plus", "Pro"]);
    const plusCard = screen.getByRole("listitem", { name: "Plus" });
    expect(plusCard).toHaveTextContent("$9.99 / month");
    expect(plusCard).toHaveTextContent("200,000 tokens a month");
    expect(plusCard).toHaveTextContent("Up to 100 conversations");
    expect(plusCard).toHaveTextContent("Unlimited messages per conversation");
    // Feature keys read as words.
    expect(plusCard).toHaveTextContent("Faster replies");
    expect(plusCard).toHaveTextContent("Priority support");
    expect(within(screen.getByRole("listitem", { name: "Free" })).getByText("Current plan")).toBeInTheDocument();
    expect(await screen.findByTestId("current-plan")).toHaveTextContent("Free");
    expect(screen.getByText("No subscription")).toBeInTheDocument();

    await userEvent.click(screen.getByRole("radio", { name: "Yearly" }));
    expect(plusCard).toHaveTextContent("$99.00 / year");
    expect(screen.getByRole("listitem", { name: "Pro" })).toHaveTextContent("$299.00 / year");
  });

  it("shows a paid subscription with its period and when it cancels", async () => {
    backend(undefined, { subscription: { ...plus, cancelAtPeriodEnd: true }, me: { ...user, planTier: "PLUS" } });
    renderAt(<BillingPage />, "/billing");
    expect(await screen.findByTestId("current-plan")).toHaveTextContent("Plus");
    expect(screen.getByText("Active")).toBeInTheDocument();
    expect(screen.getByText("Dec 1, 2026 – Jan 1, 2027")).toBeInTheDocument();
    expect(screen.getByText("Cancels on Jan 1, 2027")).toBeInTheDocument();
    // No second checkout while one runs: the other plan is changed in the portal.
    expect(screen.queryByRole("button", { name: /^Upgrade to/ })).not.toBeInTheDocument();
    expect(await screen.findByRole("button", { name: "Switch in the billing portal" })).toBeInTheDocument();
  });

  it("starts a checkout for the plan and interval and sends the browser to it", async () => {
    const assign = vi.fn();
    vi.stubGlobal("location", { ...window.location, assign });
    const fetchMock = backend((url, init) =>
      url === "/api/v1/billing/checkout" && init.method === "POST"
        ? Response.json({ url: "https://checkout.example/cs_1", sessionId: "cs_1" })
        : undefined,
    );
    renderAt(<BillingPage />, "/billing");
    await userEvent.click(await screen.findByRole("radio", { name: "Yearly" }));
    await userEvent.click(await screen.findByRole("button", { name: "Upgrade to Plus" }));
    await waitFor(() => expect(assign).toHaveBeenCalledWith("https://checkout.example/cs_1"));
    const init = calls(fetchMock, "POST", "/billing/checkout")[0]![1];
    expect(JSON.parse(String(init.body))).toEqual({ planId: "p-plus", interval: "year" });
  });

  it("says in a sentence that payments are not set up (503 stripe_not_configured), where the upgrade was asked", async () => {
    const assign = vi.fn();
    vi.stubGlobal("location", { ...window.location, assign });
    backend((url) => (url === "/api/v1/billing/checkout" ? problem(503, "stripe_not_configured") : undefined));
    renderAt(<BillingPage />, "/billing");
    await userEvent.click(await screen.findByRole("button", { name: "Upgrade to Pro" }));
    const plansSection = screen.getByRole("region", { name: "Plans" });
    expect(await within(plansSection).findByRole("alert")).toHaveTextContent("Payments are not set up on this server yet.");
    expect(assign).not.toHaveBeenCalled();
  });

  it("cancels at the period's end after a confirmation, then resumes", async () => {
    const state = { subscription: plus, me: { ...user, planTier: "PLUS" } };
    const fetchMock = backend((url, init) => {
      if (url === "/api/v1/billing/subscription/cancel" && init.method === "POST") {
        state.subscription = { ...plus, cancelAtPeriodEnd: true };
        return Response.json(state.subscription);
      }
      if (url === "/api/v1/billing/subscription/resume" && init.method === "POST") {
        state.subscription = plus;
        return Response.json(plus);
      }
      return undefined;
    }, state);
    renderAt(<BillingPage />, "/billing");
    await userEvent.click(await screen.findByRole("button", { name: "Cancel at period end…" }));
    // Nothing is sent before the confirmation.
    expect(calls(fetchMock, "POST", "/billing/subscription/cancel")).toHaveLength(0);
    const confirm = screen.getByRole("form", { name: "Cancel Plus?" });
    expect(confirm).toHaveTextContent("You keep Plus until Jan 1, 2027");
    await userEvent.type(within(confirm).getByLabelText("Why are you leaving? (optional)"), "Too expensive");
    await userEvent.click(within(confirm).getByRole("button", { name: "Cancel at period end" }));
    expect(await screen.findByText("Cancels on Jan 1, 2027")).toBeInTheDocument();
    const init = calls(fetchMock, "POST", "/billing/subscription/cancel")[0]![1];
    expect(JSON.parse(String(init.body))).toEqual({ atPeriodEnd: true, reason: "Too expensive" });
    expect(screen.queryByRole("form", { name: "Cancel Plus?" })).not.toBeInTheDocument();

    await userEvent.click(screen.getByRole("button", { name: "Resume subscription" }));
    await waitFor(() => expect(screen.queryByText("Cancels on Jan 1, 2027")).not.toBeInTheDocument());
    expect(calls(fetchMock, "POST", "/billing/subscription/resume")).toHaveLength(1);
    expect(screen.getByRole("button", { name: "Cancel at period end…" })).toBeInTheDocument();
  });

  it("shows a resume refusal (409 not_canceling) as a sentence", async () => {
    backend(
      (url) => (url === "/api/v1/billing/subscription/resume" ? problem(409, "not_canceling") : undefined),
      { subscription: { ...plus, cancelAtPeriodEnd: true }, me: user },
    );
    renderAt(<BillingPage />, "/billing");
    await userEvent.click(await screen.findByRole("button", { name: "Resume subscription" }));
    expect(await within(screen.getByRole("region", { name: "Your plan" })).findByRole("alert")).toHaveTextContent(
      "Your subscription is not set to cancel.",
    );
  });

  it("lists the invoices and loads more by the cursor", async () => {
    const fetchMock = backend((url) => {
      if (!url.startsWith("/api/v1/billing/invoices")) return undefined;
      const cursor = new URL(url, "http://x").searchParams.get("cursor");
      return cursor === "c2"
        ? Response.json({ items: [invoice(1)], nextCursor: null })
        : Response.json({ items: [invoice(3), invoice(2)], nextCursor: "c2" });
    });
    renderAt(<BillingPage />, "/billing");
    const section = screen.getByRole("region", { name: "Invoices" });
    const table = await within(section).findByRole("table");
    expect(within(table).getAllByRole("row")).toHaveLength(3);
    const first = within(table).getAllByRole("row")[1]!;
    expect(first).toHaveTextContent("AB-0003");
    expect(first).toHaveTextContent("Dec 1, 2026");
    expect(first).toHaveTextContent("$9.99");
    expect(first).toHaveTextContent("Paid");
    expect(within(first).getByRole("link", { name: "PDF of invoice AB-0003" })).toHaveAttribute("href", "https://pay.example/invoice-3.pdf");

    await userEvent.click(within(section).getByRole("button", { name: "Load more invoices" }));
    await waitFor(() => expect(within(table).getAllByRole("row")).toHaveLength(4));
    expect(within(table).getAllByRole("row")[3]).toHaveTextContent("AB-0001");
    expect(within(section).queryByRole("button", { name: "Load more invoices" })).not.toBeInTheDocument();
    const asked = calls(fetchMock, "GET", "/billing/invoices").map(([u]) => new URL(u, "http://x").searchParams.get("cursor"));
    expect(asked).toEqual([null, "c2"]);
  });

  it("after a checkout, asks again until the plan changed, then says so", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const state = { subscription: free, me: user };
    const fetchMock = backend(undefined, state);
    renderAt(<BillingPage />, "/billing?checkout=success&session_id=cs_1");
    expect(screen.getByRole("status")).toHaveTextContent("Payment received, your plan will update in a moment");
    await waitFor(() => expect(calls(fetchMock, "GET", "/billing/subscription")).toHaveLength(1));
    // The webhook arrives: the subscription first, identity's plan tier later.
    state.subscription = plus;
    await act(() => vi.advanceTimersByTimeAsync(CHECKOUT_POLL_MS));
    expect(await screen.findByTestId("current-plan")).toHaveTextContent("Plus");
    expect(screen.getByRole("status")).toHaveTextContent("will update in a moment");
    state.me = { ...user, planTier: "PLUS" };
    await act(() => vi.advanceTimersByTimeAsync(CHECKOUT_POLL_MS));
    await waitFor(() => expect(screen.getByRole("status")).toHaveTextContent("you are on Plus now"));
    expect(session.get()?.user.planTier).toBe("PLUS");
    // Then it stops asking.
    const asked = calls(fetchMock, "GET", "/billing/subscription").length;
    await act(() => vi.advanceTimersByTimeAsync(CHECKOUT_POLL_MS * 3));
    expect(calls(fetchMock, "GET", "/billing/subscription")).toHaveLength(asked);
  });

  it("after a checkout, stops asking after a while and says to reload", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const fetchMock = backend();
    renderAt(<BillingPage />, "/billing?checkout=success&session_id=cs_1");
    await act(() => vi.advanceTimersByTimeAsync(CHECKOUT_POLL_MS * 2));
    expect(calls(fetchMock, "GET", "/billing/subscription").length).toBeGreaterThan(1);
    await act(() => vi.advanceTimersByTimeAsync(CHECKOUT_WAIT_MS));
    expect(screen.getByRole("status")).toHaveTextContent("Your plan has not updated yet; reload this page in a minute.");
    const asked = calls(fetchMock, "GET", "/billing/subscription").length;
    await act(() => vi.advanceTimersByTimeAsync(CHECKOUT_POLL_MS * 3));
    expect(calls(fetchMock, "GET", "/billing/subscription")).toHaveLength(asked);
  });

  it("says calmly that a canceled checkout changed nothing", async () => {
    backend();
    renderAt(<BillingPage />, "/billing?checkout=canceled");
    expect(screen.getByRole("status")).toHaveTextContent("Checkout canceled: nothing was charged");
  });
});
