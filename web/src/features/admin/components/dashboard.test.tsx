import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { session } from "@/lib/session";
import { renderAt } from "@/test-utils";
import Dashboard from "./dashboard";
import { AdminPage } from "./admin-page";

const admin = { id: "a", email: "root@example.com", name: "Root", planTier: "PRO", role: "admin", emailVerified: true, createdAt: "" };
const TODAY = "2026-12-01";
const UID = "0193a3c2-7f00-7000-8000-000000000001";

/** The daily series from `from` to `to`: signups on the 15th, MRR rising. */
function daily(from: string, to: string) {
  const items = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 86_400_000) {
    const date = new Date(t).toISOString().slice(0, 10);
    items.push({
      date,
      signups: date === "2026-11-15" ? 12 : 0,
      messages: 0,
      tokens: 0,
      cost: "0.000000",
      revenue: "0.00",
      mrr: date >= "2026-11-20" ? "129.97" : "99.98",
      newSubscriptions: 0,
      churnedSubscriptions: 0,
    });
  }
  return { items };
}

const answers: Record<string, (q: URLSearchParams) => unknown> = {
  "/api/v1/admin/analytics/daily": (q) => daily(q.get("from")!, q.get("to")!),
  "/api/v1/admin/analytics/users-by-plan": () => ({ items: [{ planTier: "FREE", count: 1200 }, { planTier: "PRO", count: 3 }] }),
  "/api/v1/admin/analytics/mrr": () => ({ mrr: "129.97", currency: "USD" }),
  "/api/v1/admin/analytics/subscriptions": () => ({ items: [{ plan: "Pro", subscriptionCount: 2, userCount: 2 }] }),
  "/api/v1/admin/analytics/token-usage/models": (q) => ({
    month: q.get("month"),
    items: [{ model: "gpt-4o-mini", usageCount: 40, totalTokens: 12345, avgTokens: "308.6250000000000000", totalCost: "0.012345" }],
  }),
  "/api/v1/admin/analytics/top-users": () => ({ items: [{ userId: UID, conversationCount: 4, totalTokens: 9000 }] }),
  "/api/v1/admin/analytics/conversation-length": () => ({ avgMessages: "6.5000000000000000", avgTokens: null }),
  "/api/v1/admin/analytics/overdue-invoices": () => ({
    items: [{ id: "i1", invoiceNumber: "INV-0042", userId: UID, total: "19.99", dueDate: "2026-11-01" }],
    nextCursor: null,
  }),
  // The first page of a longer list.
  "/api/v1/admin/analytics/lifetime-value": () => ({
    items: Array.from({ length: 20 }, (_, i) => ({ userId: `${UID.slice(0, -2)}${String(i).padStart(2, "0")}`, amount: "9.99", paymentCount: 2, totalSpent: "19.98", signupDate: "2026-01-05T10:00:00Z" })),
    nextCursor: "WyIxOS45OCJd",
  }),
};

type Init = RequestInit & { headers: Record<string, string> };

function backend(override: (path: string, q: URLSearchParams, init: Init) => Response | undefined = () => undefined) {
  const fetchMock = vi.fn(async (input: string, init: Init) => {
    const u = new URL(input, "http://localhost");
    const custom = override(u.pathname, u.searchParams, init);
    if (custom) return custom;
    const answer = answers[u.pathname];
    return answer ? Response.json(answer(u.searchParams)) : new Response(null, { status: 404 });
  });
  vi.stubGlobal("fetch", fetchMock);
  return fetchMock;
}
const calls = (mock: ReturnType<typeof backend>, path: string) =>
  (mock.mock.calls as unknown as [string, Init][]).filter(([u]) => u.split("?")[0] === `/api/v1${path}`).map(([u, init]) => ({ url: u, init }));
const section = (name: string) => screen.getByRole("region", { name });

beforeEach(() => session.set({ accessToken: "tok", tokenType: "Bearer", expiresIn: 900, user: admin }));
afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
  session.clear();
});

describe("the admin dashboard", () => {
  it("asks for the last 30 days and this month by default and shows every figure", async () => {
    const fetchMock = backend();
    renderAt(<Dashboard today={TODAY} />, "/admin");
    expect(screen.getByRole("heading", { level: 1, name: "Admin" })).toBeInTheDocument();
    expect(screen.getByLabelText("From")).toHaveValue("2026-11-02");
    expect(screen.getByLabelText("To")).toHaveValue(TODAY);
    expect(screen.getByRole("button", { name: "Last 30 days", pressed: true })).toBeInTheDocument();

    const signups = await within(section("Signups per day")).findByRole("img", { name: "Signups per day (UTC)" });
    expect(within(signups as unknown as HTMLElement).getAllByTestId("bar-slot")).toHaveLength(30);
    expect(within(signups as unknown as HTMLElement).getAllByTestId("bar")).toHaveLength(1);
    expect(signups).toHaveAccessibleDescription(/the most, 12, on Nov 15, 2026/);
    expect(calls(fetchMock, "/admin/analytics/daily").map((c) => c.url)).toContain("/api/v1/admin/analytics/daily?from=2026-11-02&to=2026-12-01");

    const mrr = section("Monthly recurring revenue");
    expect(await within(mrr).findByTestId("mrr")).toHaveTextContent("$129.97");
    expect(within(mrr).getByRole("img", { name: "MRR per day (UTC)" })).toHaveAccessibleDescription(/the most, \$129\.97, on Nov 20, 2026/);

    const plans = await within(section("Users by plan")).findByRole("table", { name: "Active users per plan tier" });
    expect(within(plans).getAllByRole("row").map((r) => r.textContent)).toEqual(["Plan tierUsers", "FREE1,200", "PRO3"]);

    const models = await within(section("Token usage by model")).findByRole("table", { name: "Calls, tokens and cost per model in 2026-12" });
    expect(within(models).getAllByRole("cell").map((c) => c.textContent)).toEqual(["40", "12,345", "308.6", "$0.012345"]);
    expect(calls(fetchMock, "/admin/analytics/token-usage/models")[0]!.url).toBe("/api/v1/admin/analytics/token-usage/models?month=2026-12");

    const top = await within(section("Top users")).findByRole("table", { name: "The 10 users with the most tokens" });
    expect(within(top).getByRole("rowheader")).toHaveTextContent(UID);
    expect(calls(fetchMock, "/admin/analytics/top-users")[0]!.url).toBe("/api/v1/admin/analytics/top-users?days=30&limit=10");
    expect(section("Top users")).toHaveTextContent("Conversations started since Nov 2, 2026 (the last 30 days).");

    const length = section("Conversation length");
    await within(length).findByText("6.5");
    expect(within(length).getByText("Tokens per conversation").nextSibling).toHaveTextContent("—");

    const subs = await within(section("Subscriptions by plan")).findByRole("table", { name: "Active subscriptions per plan" });
    expect(within(subs).getAllByRole("cell").map((c) => c.textContent)).toEqual(["2", "2"]);

    const overdue = await within(section("Overdue invoices")).findByRole("table", { name: "Overdue invoices" });
    expect(within(overdue).getByRole("rowheader")).toHaveTextContent("INV-0042");
    expect(within(overdue).getAllByRole("cell").map((c) => c.textContent)).toEqual([UID, "$19.99", "Nov 1, 2026"]);

    // A paged list shows its first page and says the CSV has every row.
    const lifetime = section("Lifetime value");
    const ltv = await within(lifetime).findByRole("table", { name: "Succeeded payments and their total per user" });
    expect(within(ltv).getAllByRole("row")).toHaveLength(1 + 20);
    expect(lifetime).toHaveTextContent("The first 20 rows; the CSV has them all.");
    // The last page says nothing of the kind.
    expect(section("Overdue invoices")).not.toHaveTextContent("the CSV has them all");
    // Every request carried the admin's token.
    for (const [, init] of fetchMock.mock.calls as unknown as [string, Init][]) expect(init.headers.Authorization).toBe("Bearer tok");
  });

  it("shows each chart's numbers as a table too", async () => {
    backend();
    renderAt(<Dashboard today={TODAY} />, "/admin");
    const signups = section("Signups per day");
    await within(signups).findByRole("img");
    await userEvent.click(within(signups).getByRole("button", { name: "Show as table (Signups per day)" }));
    const table = within(signups).getByRole("table", { name: "Signups per day (UTC)" });
    const rows = within(table).getAllByRole("row").slice(1);
    expect(rows).toHaveLength(30);
    expect(within(rows[13]!).getByRole("rowheader")).toHaveTextContent("Nov 15, 2026");
    expect(within(rows[13]!).getByRole("cell")).toHaveTextContent("12");
    expect(within(signups).queryByRole("img")).not.toBeInTheDocument();
    await userEvent.click(within(signups).getByRole("button", { name: "Show as chart (Signups per day)", pressed: true }));
    expect(within(signups).getByRole("img")).toBeInTheDocument();

    const mrr = section("Monthly recurring revenue");
    await userEvent.click(await within(mrr).findByRole("button", { name: "Show as table (MRR per day)" }));
    const mrrRows = within(within(mrr).getByRole("table", { name: "MRR per day (UTC)" })).getAllByRole("row");
    expect(mrrRows[mrrRows.length - 1]).toHaveTextContent("Dec 1, 2026$129.97");
  });

  it("asks again for a new range, and refuses one the gateway would refuse without asking", async () => {
    const fetchMock = backend();
    renderAt(<Dashboard today={TODAY} />, "/admin");
    await within(section("Signups per day")).findByRole("img");
    const from = screen.getByLabelText("From");
    await userEvent.clear(from);
    await userEvent.type(from, "2026-11-25");
    await waitFor(() =>
      expect(calls(fetchMock, "/admin/analytics/daily").map((c) => c.url)).toContain("/api/v1/admin/analytics/daily?from=2026-11-25&to=2026-12-01"),
    );
    await waitFor(() => expect(within(section("Signups per day")).getAllByTestId("bar-slot")).toHaveLength(7));
    await waitFor(() => expect(calls(fetchMock, "/admin/analytics/top-users").map((c) => c.url)).toContain("/api/v1/admin/analytics/top-users?days=7&limit=10"));
    expect(calls(fetchMock, "/admin/analytics/conversation-length").map((c) => c.url)).toContain("/api/v1/admin/analytics/conversation-length?days=7");

    const asked = fetchMock.mock.calls.length;
    const to = screen.getByLabelText("To");
    await userEvent.clear(to);
    await userEvent.type(to, "2026-11-01");
    expect(to).toHaveAccessibleDescription("The end must not be before the start.");
    expect(to).toHaveAttribute("aria-invalid", "true");
    expect(fetchMock.mock.calls.length).toBe(asked);

    await userEvent.click(screen.getByRole("button", { name: "Last 90 days" }));
    await waitFor(() =>
      expect(calls(fetchMock, "/admin/analytics/daily").map((c) => c.url)).toContain("/api/v1/admin/analytics/daily?from=2026-09-03&to=2026-12-01"),
    );
    expect(screen.getByLabelText("To")).not.toHaveAttribute("aria-invalid");
  });

  it("asks for another month's token usage", async () => {
    const fetchMock = backend();
    renderAt(<Dashboard today={TODAY} />, "/admin");
    const month = screen.getByLabelText("Month (UTC)");
    await userEvent.clear(month);
    await userEvent.type(month, "2026-10");
    expect(await within(section("Token usage by model")).findByRole("table", { name: "Calls, tokens and cost per model in 2026-10" })).toBeInTheDocument();
    expect(calls(fetchMock, "/admin/analytics/token-usage/models").map((c) => c.url)).toContain("/api/v1/admin/analytics/token-usage/models?month=2026-10");
  });

  it("shows a failed figure where it is, with a way to try again, and the others as usual", async () => {
    let down = true;
    backend((path) =>
      path === "/api/v1/admin/analytics/mrr" && down
        ? Response.json(
            { type: "https://aichat.dev/problems/unavailable", title: "x", status: 503, code: "unavailable", detail: "The service is unavailable; try again shortly." },
            { status: 503, headers: { "Content-Type": "application/problem+json" } },
          )
        : undefined,
    );
    renderAt(<Dashboard today={TODAY} />, "/admin");
    const mrr = section("Monthly recurring revenue");
    const alert = await within(mrr).findByRole("alert");
    expect(alert).toHaveTextContent("The service is unavailable; try again shortly.");
    expect(await within(section("Users by plan")).findByRole("table")).toBeInTheDocument();
    down = false;
    await userEvent.click(within(alert).getByRole("button", { name: "Try again" }));
    expect(await within(mrr).findByTestId("mrr")).toHaveTextContent("$129.97");
    expect(within(mrr).queryByRole("alert")).not.toBeInTheDocument();
  });

  it("downloads a figure as CSV with the token, and tells a failed download at its section", async () => {
    let fail = false;
    const fetchMock = backend((_path, _q, init) => {
      if (init.headers.Accept !== "text/csv") return undefined;
      if (fail) {
        return Response.json(
          { type: "https://aichat.dev/problems/forbidden", title: "Not allowed", status: 403, code: "forbidden", detail: "Only administrators may do this." },
          { status: 403, headers: { "Content-Type": "application/problem+json" } },
        );
      }
      return new Response("planTier,count\r\nFREE,1200\r\n", {
        headers: { "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": `attachment; filename="users-by-plan-${TODAY}.csv"` },
      });
    });
    const created = vi.fn<(blob: Blob) => string>(() => "blob:x");
    vi.stubGlobal("URL", Object.assign(URL, { createObjectURL: created, revokeObjectURL: vi.fn() }));
    const saved: string[] = [];
    vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(function (this: HTMLAnchorElement) {
      saved.push(this.download);
    });
    renderAt(<Dashboard today={TODAY} />, "/admin");
    const plans = section("Users by plan");
    await userEvent.click(within(plans).getByRole("button", { name: "Download CSV of Users by plan" }));
    await waitFor(() => expect(saved).toEqual([`users-by-plan-${TODAY}.csv`]));
    const csvCall = calls(fetchMock, "/admin/analytics/users-by-plan").find((c) => c.init.headers.Accept === "text/csv")!;
    expect(csvCall.init.headers.Authorization).toBe("Bearer tok");
    expect(await created.mock.calls[0]![0].text()).toBe("planTier,count\r\nFREE,1200\r\n");

    // The month and the range go with the download.
    const models = section("Token usage by model");
    await userEvent.click(within(models).getByRole("button", { name: "Download CSV of Token usage by user" }));
    await waitFor(() =>
      expect(calls(fetchMock, "/admin/analytics/token-usage/users").map((c) => c.url)).toEqual(["/api/v1/admin/analytics/token-usage/users?month=2026-12"]),
    );

    fail = true;
    const overdue = section("Overdue invoices");
    await userEvent.click(within(overdue).getByRole("button", { name: "Download CSV of Overdue invoices" }));
    expect(await within(overdue).findByText("Only administrators may do this.")).toBeInTheDocument();
  });
});

describe("the admin page", () => {
  it("is not there for a user who is not an admin, and asks for nothing", () => {
    const fetchMock = backend();
    session.set({ accessToken: "tok", tokenType: "Bearer", expiresIn: 900, user: { ...admin, role: "user" } });
    renderAt(<AdminPage />, "/admin");
    expect(screen.getByRole("heading", { level: 1, name: "Not found" })).toBeInTheDocument();
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it("loads the dashboard on its own for an admin", async () => {
    backend();
    renderAt(<AdminPage />, "/admin");
    expect(await screen.findByRole("heading", { level: 1, name: "Admin" })).toBeInTheDocument();
    expect(await screen.findByRole("region", { name: "Lifetime value" })).toBeInTheDocument();
  });
});
