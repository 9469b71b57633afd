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
    expect(screen.getByRole("link", { name: "See the plans" })).toHaveAttribute("href", "/billing");
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

  it("Esc stops the reply as it streams, and the typed text of the next one stays", async () => {
    let aborted = false;
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init?: RequestInit) => {
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
      }),
    );
    renderAt(<ConversationPage />, "/chat/c1", "/chat/:conversationId");
    const box = screen.getByLabelText("Message");
    await userEvent.type(box, "hi{Enter}");
    await screen.findByRole("button", { name: "Stop" });
    await userEvent.type(box, "next question");
    await userEvent.keyboard("{Escape}");
    await waitFor(() => expect(aborted).toBe(true));
    expect(await screen.findByRole("button", { name: "Send" })).toBeInTheDocument();
    expect(screen.getByRole("alert")).toHaveTextContent("Stopped");
    expect(box).toHaveValue("next question");
  });

  it("keeps the typed text when the stream fails midway", async () => {
    backend(() =>
      sse([
        ["message", userMessage],
        ["delta", { text: "Hel" }],
        ["error", { status: 502, code: "provider_error", title: "The model's provider failed", detail: "The provider failed." }],
      ]),
    );
    renderAt(<ConversationPage />, "/chat/c1", "/chat/:conversationId");
    const box = screen.getByLabelText("Message");
    await userEvent.type(box, "hi");
    await userEvent.keyboard("{Enter}");
    expect(await screen.findByRole("alert")).toHaveTextContent("The provider failed.");
    // The message was saved (the `message` event): the composer emptied for it.
    expect(box).toHaveValue("");
  });

  it("retries a send the provider failed: the reply-less message is replaced, not repeated", async () => {
    let sends = 0;
    const calls: string[] = [];
    let stored: unknown[] = [];
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init?: RequestInit) => {
        calls.push(`${init?.method ?? "GET"} ${url}`);
        if (init?.method === "POST" && url.endsWith("/messages")) {
          sends += 1;
          if (sends === 1) {
            stored = [userMessage];
            return sse([
              ["message", userMessage],
              ["error", { status: 503, code: "provider_unavailable", title: "The model is unavailable", detail: "Try again." }],
            ]);
          }
          const again = { ...userMessage, id: "m3" };
          stored = [again, reply];
          return sse([
            ["message", again],
            ["delta", { text: "Hello\nthere" }],
            ["done", { message: reply, usage: { promptTokens: 1, completionTokens: 2, totalTokens: 3, costUsd: "0.0001" } }],
          ]);
        }
        if (init?.method === "DELETE") {
          stored = [];
          return new Response(null, { status: 204 });
        }
        if (url.startsWith("/api/v1/conversations/c1/messages")) return Response.json({ items: stored, nextCursor: null });
        if (url === "/api/v1/conversations/c1") return Response.json(conversation);
        return Response.json({ items: [], nextCursor: null });
      }),
    );
    renderAt(<ConversationPage />, "/chat/c1", "/chat/:conversationId");
    await userEvent.type(screen.getByLabelText("Message"), "hi");
    await userEvent.keyboard("{Enter}");
    expect(await screen.findByRole("alert")).toHaveTextContent("unavailable right now");
    await userEvent.click(await screen.findByRole("button", { name: "Retry" }));
    await waitFor(() => expect(screen.getAllByRole("article").map((a) => a.textContent)).toEqual(["Youhi", "AssistantHello\nthere"]));
    const deleted = calls.indexOf("DELETE /api/v1/conversations/c1/messages/m1");
    expect(deleted).toBeGreaterThan(-1);
    expect(calls.filter((c) => c.startsWith("POST")).length).toBe(2);
    expect(calls.findIndex((c, i) => i > deleted && c.startsWith("POST"))).toBeGreaterThan(deleted);
    expect(screen.queryByRole("button", { name: "Retry" })).toBeNull();
  });

  it("offers no retry for a refusal such as a spent quota", async () => {
    backend(() => Response.json({ status: 402, code: "quota_exceeded", title: "Quota", detail: "Your quota is spent." }, { status: 402, headers: { "Content-Type": "application/problem+json" } }));
    renderAt(<ConversationPage />, "/chat/c1", "/chat/:conversationId");
    await userEvent.type(screen.getByLabelText("Message"), "hi");
    await userEvent.keyboard("{Enter}");
    expect(await screen.findByRole("alert")).toHaveTextContent("You have used this month's tokens");
    expect(screen.queryByRole("button", { name: "Retry" })).toBeNull();
  });

  it("renders the reply as Markdown, the user's text as typed", async () => {
    const stored = [
      { ...userMessage, content: "**not bold** <b>x</b>" },
      { ...reply, content: "Use `ls`:\n\n```bash\nls -la\n```" },
    ];
    backend(() => sse([]), stored);
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string) => {
        if (url.startsWith("/api/v1/conversations/c1/messages")) return Response.json({ items: stored, nextCursor: null });
        if (url === "/api/v1/conversations/c1") return Response.json(conversation);
        return Response.json({ items: [], nextCursor: null });
      }),
    );
    renderAt(<ConversationPage />, "/chat/c1", "/chat/:conversationId");
    const [mine, theirs] = await screen.findAllByRole("article");
    expect(mine).toHaveTextContent("**not bold** <b>x</b>");
    expect(mine?.querySelector("strong, b")).toBeNull();
    await waitFor(() => expect(theirs?.querySelector("pre code")).toHaveTextContent("ls -la"));
    expect(screen.getByRole("button", { name: "Copy the bash code" })).toBeInTheDocument();
  });

  it("puts only the rows in view in the DOM for a 2,000-message conversation", async () => {
    const many = Array.from({ length: 2000 }, (_, i) => ({
      id: `m${i}`,
      conversationId: "c1",
      role: i % 2 ? "assistant" : "user",
      content: `message ${i}`,
      tokenCount: 1,
      createdAt: "",
    }));
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string) => {
        if (url.startsWith("/api/v1/conversations/c1/messages")) {
          const cursor = Number(new URL(url, "http://x").searchParams.get("cursor") ?? 0);
          const next = cursor + 100 < many.length ? String(cursor + 100) : null;
          return Response.json({ items: many.slice(cursor, cursor + 100), nextCursor: next });
        }
        if (url === "/api/v1/conversations/c1") return Response.json(conversation);
        return Response.json({ items: [], nextCursor: null });
      }),
    );
    renderAt(<ConversationPage />, "/chat/c1", "/chat/:conversationId");
    // All pages in, the view follows the end: the last message shows...
    expect(await screen.findByText("message 1999", {}, { timeout: 5_000 })).toBeInTheDocument();
    // ...and only a window of rows is rendered, not 2,000.
    const rendered = screen.getAllByRole("article").length;
    expect(rendered).toBeGreaterThan(0);
    expect(rendered).toBeLessThan(40);
    expect(screen.queryByText("message 0")).toBeNull();
  });
});
