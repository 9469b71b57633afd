import { screen, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { session } from "@/lib/session";
import { renderAt } from "@/test-utils";
import { UsagePage } from "./usage";

const user = { id: "u", email: "ada@example.com", name: "Ada", planTier: "FREE", role: "user", emailVerified: true, createdAt: "" };
const month = {
  billingMonth: "2026-12-01",
  tokensUsed: 42,
  monthlyQuota: 10000,
  remaining: 9958,
  messagesCount: 2,
  conversationsCount: 1,
  costThisMonth: "0.000042",
};

beforeEach(() => session.set({ accessToken: "a", tokenType: "Bearer", expiresIn: 900, user }));
afterEach(() => {
  vi.unstubAllGlobals();
  session.clear();
});

describe("the usage page", () => {
  it("shows the month and, loaded apart, the chart of the last 30 days", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string) => {
        if (url === "/api/v1/billing/usage") return Response.json(month);
        if (url === "/api/v1/me/usage/daily?days=30") {
          const items = Array.from({ length: 30 }, (_, i) => ({
            date: new Date(Date.UTC(2026, 10, 2 + i)).toISOString().slice(0, 10),
            tokens: i === 29 ? 42 : 0,
            costUsd: i === 29 ? "0.000042" : "0.000000",
          }));
          return Response.json({ items });
        }
        return new Response(null, { status: 404 });
      }),
    );
    renderAt(<UsagePage />, "/usage");
    expect(await screen.findByTestId("tokens-used")).toHaveTextContent("42");
    const chart = await screen.findByRole("img", { name: "Tokens per day, the last 30 days (UTC)" });
    expect(within(chart as unknown as HTMLElement).getAllByTestId("bar-slot")).toHaveLength(30);
    expect(screen.getAllByTestId("bar")).toHaveLength(1);
    expect(screen.getByRole("heading", { name: "Last 30 days" })).toBeInTheDocument();
  });
});
