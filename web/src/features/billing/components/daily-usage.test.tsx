import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { session } from "@/lib/session";
import { renderAt } from "@/test-utils";
import DailyUsage from "./daily-usage";

const user = { id: "u", email: "ada@example.com", name: "Ada", planTier: "FREE", role: "user", emailVerified: true, createdAt: "" };

/** `n` days ending 2026-12-01, zero except those in `used` (date → [tokens, cost]). */
function days(n: number, used: Record<string, [number, string]> = {}) {
  const last = Date.UTC(2026, 11, 1);
  return Array.from({ length: n }, (_, i) => {
    const date = new Date(last - (n - 1 - i) * 86_400_000).toISOString().slice(0, 10);
    const [tokens, costUsd] = used[date] ?? [0, "0.000000"];
    return { date, tokens, costUsd };
  });
}

function backend(answer: () => Response | Promise<Response>) {
  const fetchMock = vi.fn(async (url: string) => {
    if (url.startsWith("/api/v1/me/usage/daily")) return answer();
    return new Response(null, { status: 404 });
  });
  vi.stubGlobal("fetch", fetchMock);
  return fetchMock;
}

beforeEach(() => session.set({ accessToken: "a", tokenType: "Bearer", expiresIn: 900, user }));
afterEach(() => {
  vi.unstubAllGlobals();
  session.clear();
});

describe("the daily usage", () => {
  it("asks for 30 days and draws a slot for each, a bar for each day with tokens", async () => {
    const fetchMock = backend(() =>
      Response.json({ items: days(30, { "2026-11-15": [1520, "0.004180"], "2026-12-01": [300, "0.000900"] }) }),
    );
    renderAt(<DailyUsage days={30} />, "/usage");
    const chart = await screen.findByRole("img", { name: /tokens per day/i });
    expect(fetchMock.mock.calls[0]![0]).toBe("/api/v1/me/usage/daily?days=30");
    expect(within(chart as unknown as HTMLElement).getAllByTestId("bar-slot")).toHaveLength(30);
    expect(screen.getAllByTestId("bar")).toHaveLength(2);
    expect(chart).toHaveAccessibleDescription(/1,820 tokens over 30 days, used on 2 of them; the most, 1,520, on Sun, Nov 15, 2026/);
    // The axis: the first and the last UTC day.
    expect(screen.getByText("Nov 2")).toBeInTheDocument();
    expect(screen.getByText("Dec 1")).toBeInTheDocument();
    expect(screen.getByText("Peak: 1,520 tokens")).toBeInTheDocument();
  });

  it("shows the same numbers as a table, the cost exactly as sent", async () => {
    backend(() => Response.json({ items: days(30, { "2026-11-15": [1520, "0.004180"], "2026-12-01": [300, "0.000900"] }) }));
    renderAt(<DailyUsage days={30} />, "/usage");
    const toggle = await screen.findByRole("button", { name: "Show as table" });
    await userEvent.click(toggle);
    const table = screen.getByRole("table", { name: "Tokens and cost per day (UTC)" });
    const rows = within(table).getAllByRole("row").slice(1);
    expect(rows).toHaveLength(30);
    expect(rows.map((r) => within(r).getAllByRole("cell").map((c) => c.textContent))[13]).toEqual(["1,520", "$0.004180"]);
    expect(within(rows[13]!).getByRole("rowheader")).toHaveTextContent("Sun, Nov 15, 2026");
    expect(within(rows[29]!).getAllByRole("cell").map((c) => c.textContent)).toEqual(["300", "$0.000900"]);
    expect(within(rows[0]!).getAllByRole("cell").map((c) => c.textContent)).toEqual(["0", "$0.000000"]);
    expect(screen.queryByRole("img")).not.toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Show as chart", pressed: true }));
    expect(screen.getByRole("img", { name: /tokens per day/i })).toBeInTheDocument();
  });

  it("says so when no token was used, with no chart to read", async () => {
    backend(() => Response.json({ items: days(30) }));
    renderAt(<DailyUsage days={30} />, "/usage");
    expect(await screen.findByText("No tokens used in the last 30 days.")).toBeInTheDocument();
    expect(screen.queryByRole("img")).not.toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Show as table" })).not.toBeInTheDocument();
  });

  it("shows that it is loading, then a failure as a sentence with a way to try again", async () => {
    let fail = true;
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    backend(async () => {
      await gate;
      if (fail) {
        return Response.json(
          { type: "about:blank", status: 503, code: "unavailable", title: "Service Unavailable", detail: "chat is down" },
          { status: 503, headers: { "content-type": "application/problem+json" } },
        );
      }
      return Response.json({ items: days(7, { "2026-12-01": [42, "0.000042"] }) });
    });
    renderAt(<DailyUsage days={7} />, "/usage");
    expect(screen.getByRole("status")).toHaveTextContent("Loading daily usage…");
    release();
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).not.toBe("");
    expect(screen.queryByRole("img")).not.toBeInTheDocument();
    fail = false;
    await userEvent.click(within(alert).getByRole("button", { name: "Try again" }));
    const chart = await screen.findByRole("img", { name: /tokens per day/i });
    expect(within(chart as unknown as HTMLElement).getAllByTestId("bar-slot")).toHaveLength(7);
    expect(screen.queryByRole("alert")).not.toBeInTheDocument();
  });
});
