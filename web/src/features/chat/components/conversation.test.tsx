import { fireEvent, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { renderAt } from "@/test-utils";
import { ConversationPage } from "./conversation";

const conversation = {
  id: "c1", title: "Trip", model: "gpt-4o-mini", messageCount: 0, tokenCount: 0, isArchived: false, createdAt: "", updatedAt: "",
};
const userMessage = { id: "m1", conversationId: "c1", role: "user", content: "hi", tokenCount: 1, createdAt: "" };
const reply = { id: "m2", conversationId: "c1", role: "assistant", content: "Hello\nthere", tokenCount: 2, createdAt: "" };

function sse(events: [string, unknown][]): Response {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const [event, data] of events) c.enqueue(enc.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
      c.close();
    },
  });
  return new Response(body, { headers: { "Content-Type": "text/event-stream" } });
}

function backend(onSend: () => Response, saved: unknown[] = []) {
  let stored: unknown[] = [];
  const fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
    if (init?.method === "POST" && url.endsWith("/messages")) {
      stored = saved;
      return onSend();
    }
    if (url.startsWith("/api/v1/conversations/c1/messages")) return Response.json({ items: stored, nextCursor: null });
    if (url === "/api/v1/conversations/c1") return Response.json(conversation);
    return Response.json({ items: [], nextCursor: null });
  });
  vi.stubGlobal("fetch", fetchMock);
  return fetchMock;
}

afterEach(() => vi.unstubAllGlobals());

describe("the conversation", () => {
  it("sends on Enter, shows the streamed reply, and empties the composer", async () => {
    backend(() =>
      sse([
        ["message", userMessage],
        ["delta", { text: "Hello" }],
        ["delta", { text: "\nthere" }],
        ["done", { message: reply, usage: { promptTokens: 1, completionTokens: 2, totalTokens: 3, costUsd: "0.0001" } }],
      ]),
      [userMessage, reply],
    );
    renderAt(<ConversationPage />, "/chat/c1", "/chat/:conversationId");
    const box = screen.getByLabelText("Message");
    await userEvent.type(box, "hi");
    await userEvent.keyboard("{Enter}");
    await waitFor(() => expect(screen.getAllByRole("article").map((a) => a.textContent)).toEqual(["Youhi", "AssistantHello\nthere"]));
    expect(box).toHaveValue("");
  });

  it("Shift+Enter adds a new line instead of sending", async () => {
    const fetchMock = backend(() => sse([]));
    renderAt(<ConversationPage />, "/chat/c1", "/chat/:conversationId");
    const box = screen.getByLabelText("Message");
    await userEvent.type(box, "one{Shift>}{Enter}{/Shift}two");
    expect(box).toHaveValue("one\ntwo");
    expect(fetchMock.mock.calls.some(([, init]) => init?.method === "POST")).toBe(false);
  });

  it("keeps the typed text and links the plans on a 402 refusal", async () => {
    backend(() =>
      Response.json(
        { status: 402, code: "quota_exceeded", title: "Payment required", detail: "Monthly token quota reached." },
        { status: 402 },
      ),
    );
    renderAt(<ConversationPage />, "/chat/c1", "/chat/:conversationId");
    const box = screen.getByLabelText("Message");
    await userEvent.type(box, "my long question");
    fireEvent.submit(box.closest("form") as HTMLFormElement);
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("You have used this month's tokens for your plan.");
    expect(screen.getByRole("link", { name: "See the plans" })).toHaveAttribute("href", "/plans");
    expect(box).toHaveValue("my long question");
  });

  it("Stop aborts the stream", async () => {
    let aborted = false;
    const fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
      if (init?.method === "POST") {
        const enc = new TextEncoder();
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(enc.encode(`event: message\ndata: ${JSON.stringify(userMessage)}\n\nevent: delta\ndata: {"text":"Hel"}\n\n`));
            init.signal?.addEventListener("abort", () => {
              aborted = true;
              c.error(new DOMException("aborted", "AbortError"));
            });
          },
        });
        return new Response(body);
      }
      if (url === "/api/v1/conversations/c1") return Response.json(conversation);
      return Response.json({ items: [], nextCursor: null });
    });
    vi.stubGlobal("fetch", fetchMock);
    renderAt(<ConversationPage />, "/chat/c1", "/chat/:conversationId");
    await userEvent.type(screen.getByLabelText("Message"), "hi{Enter}");
    await userEvent.click(await screen.findByRole("button", { name: "Stop" }));
    await waitFor(() => expect(aborted).toBe(true));
    expect(await screen.findByRole("button", { name: "Send" })).toBeInTheDocument();
  });
});
