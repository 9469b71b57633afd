import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { renderAt } from "@/test-utils";
import { NewConversation } from "./new-conversation";

afterEach(() => vi.unstubAllGlobals());

const models = {
  items: [
    { id: "gpt-4o", provider: "openai", inputCostPer1k: "0.005", outputCostPer1k: "0.015", available: false },
    { id: "claude-3-haiku", provider: "anthropic", inputCostPer1k: "0.00025", outputCostPer1k: "0.00125", available: true },
  ],
};

describe("a new conversation", () => {
  it("offers the models, unavailable ones disabled, and sends the system prompt", async () => {
    const fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
      if (url === "/api/v1/models") return Response.json(models);
      if (init?.method === "POST") return Response.json({ id: "c9" }, { status: 201 });
      return Response.json({});
    });
    vi.stubGlobal("fetch", fetchMock);
    renderAt(<NewConversation />, "/chat/new");
    const unavailable = await screen.findByRole("option", { name: /gpt-4o.*unavailable/ });
    expect(unavailable).toBeDisabled();
    expect(screen.getByRole("option", { name: /claude-3-haiku/ })).toBeEnabled();
    expect(screen.getByLabelText("Model")).toHaveValue("claude-3-haiku");
    await userEvent.type(screen.getByLabelText("System prompt (optional)"), "Answer briefly.");
    await userEvent.click(screen.getByRole("button", { name: "Start" }));
    await screen.findByText("elsewhere");
    const post = fetchMock.mock.calls.find(([, i]) => i?.method === "POST") as unknown as [string, RequestInit];
    expect(post[0]).toBe("/api/v1/conversations");
    expect(JSON.parse(post[1].body as string)).toEqual({ model: "claude-3-haiku", systemPrompt: "Answer briefly." });
  });

  it("shows a 402 refusal with a link to the plans", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init?: RequestInit) => {
        if (url === "/api/v1/models") return Response.json(models);
        if (init?.method === "POST")
          return Response.json({ status: 402, code: "conversation_limit", title: "", detail: "" }, { status: 402 });
        return Response.json({});
      }),
    );
    renderAt(<NewConversation />, "/chat/new");
    await screen.findByRole("option", { name: /claude-3-haiku/ });
    await userEvent.click(screen.getByRole("button", { name: "Start" }));
    await waitFor(() => expect(screen.getByRole("alert")).toHaveTextContent("Your plan allows no more conversations."));
    expect(screen.getByRole("link", { name: "See the plans" })).toHaveAttribute("href", "/billing");
  });
});
