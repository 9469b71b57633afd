import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { renderAt } from "@/test-utils";
import { ChatLayout } from "./chat-layout";

type Init = RequestInit & { headers: Record<string, string> };
const conversation = (i: number) => ({
  id: `c${i}`, title: `Chat ${i}`, model: "m", messageCount: 0, tokenCount: 0, isArchived: false, createdAt: "", updatedAt: "",
});

/** 25 conversations, newest first, in pages of 20 with a cursor. */
function backend() {
  let all = Array.from({ length: 25 }, (_, i) => conversation(25 - i));
  const fetchMock = vi.fn(async (url: string, init: Init) => {
    const u = new URL(url, "http://x");
    const id = u.pathname.split("/")[4];
    if (u.pathname === "/api/v1/conversations" && init.method === "GET") {
      const archived = u.searchParams.get("archived") === "true";
      const list = all.filter((c) => c.isArchived === archived);
      const start = Number(u.searchParams.get("cursor") ?? 0);
      return Response.json({ items: list.slice(start, start + 20), nextCursor: start + 20 < list.length ? String(start + 20) : null });
    }
    if (init.method === "PATCH") {
      const { title } = JSON.parse(init.body as string) as { title: string };
      all = all.map((c) => (c.id === id ? { ...c, title } : c));
      return Response.json(all.find((c) => c.id === id));
    }
    if (init.method === "POST" && u.pathname.endsWith("/archive")) {
      all = all.map((c) => (c.id === id ? { ...c, isArchived: true } : c));
      return Response.json(all.find((c) => c.id === id));
    }
    if (init.method === "DELETE") {
      all = all.filter((c) => c.id !== id);
      return new Response(null, { status: 204 });
    }
    return Response.json({});
  });
  vi.stubGlobal("fetch", fetchMock);
  return fetchMock;
}
const links = () => within(screen.getByRole("navigation", { name: "Conversations" })).queryAllByRole("link").filter((a) => a.textContent?.startsWith("Chat"));

afterEach(() => vi.unstubAllGlobals());

describe("the conversation list", () => {
  it("shows the newest first and loads the next page as its end comes into view", async () => {
    let seen: ((entries: { isIntersecting: boolean }[]) => void) | undefined;
    vi.stubGlobal(
      "IntersectionObserver",
      class {
        constructor(callback: (entries: { isIntersecting: boolean }[]) => void) {
          seen = callback;
        }
        observe() {}
        disconnect() {}
      },
    );
    backend();
    renderAt(<ChatLayout />, "/chat");
    await waitFor(() => expect(links()).toHaveLength(20));
    expect(links()[0]).toHaveTextContent("Chat 25");
    seen?.([{ isIntersecting: true }]);
    await waitFor(() => expect(links()).toHaveLength(25));
    expect(links()[24]).toHaveTextContent("Chat 1");
  });

  it("renames a conversation, refusing an empty title", async () => {
    const fetchMock = backend();
    renderAt(<ChatLayout />, "/chat");
    await userEvent.click(await screen.findByRole("button", { name: "Actions for Chat 25" }));
    await userEvent.click(screen.getByRole("button", { name: "Rename" }));
    const input = screen.getByLabelText("New title");
    await userEvent.clear(input);
    await userEvent.click(screen.getByRole("button", { name: "Save" }));
    expect(screen.getByText("Enter a title.")).toBeInTheDocument();
    expect(fetchMock.mock.calls.some(([, i]) => i.method === "PATCH")).toBe(false);
    await userEvent.type(input, "Trip to Porto{Enter}");
    expect(await screen.findByRole("link", { name: "Trip to Porto" })).toBeInTheDocument();
  });

  it("deletes only after the confirmation, and Cancel keeps it", async () => {
    const fetchMock = backend();
    renderAt(<ChatLayout />, "/chat");
    await userEvent.click(await screen.findByRole("button", { name: "Actions for Chat 24" }));
    await userEvent.click(screen.getByRole("button", { name: "Delete" }));
    expect(screen.getByRole("alertdialog")).toHaveTextContent("Delete “Chat 24” and all its messages?");
    await userEvent.click(screen.getByRole("button", { name: "Cancel" }));
    expect(fetchMock.mock.calls.some(([, i]) => i.method === "DELETE")).toBe(false);
    await userEvent.click(screen.getByRole("button", { name: "Actions for Chat 24" }));
    await userEvent.click(screen.getByRole("button", { name: "Delete" }));
    await userEvent.click(screen.getByRole("button", { name: "Delete for good" }));
    await waitFor(() => expect(screen.queryByRole("link", { name: "Chat 24" })).toBeNull());
    const deleted = fetchMock.mock.calls.filter(([, i]) => i.method === "DELETE").map(([u]) => u);
    expect(deleted).toEqual(["/api/v1/conversations/c24"]);
  });

  it("archives a conversation into the archived list", async () => {
    backend();
    renderAt(<ChatLayout />, "/chat");
    await userEvent.click(await screen.findByRole("button", { name: "Actions for Chat 23" }));
    await userEvent.click(screen.getByRole("button", { name: "Archive" }));
    await waitFor(() => expect(screen.queryByRole("link", { name: "Chat 23" })).toBeNull());
    await userEvent.click(screen.getByRole("button", { name: "Show archived" }));
    expect(await screen.findByRole("link", { name: "Chat 23" })).toBeInTheDocument();
    expect(screen.getByRole("heading", { name: "Archived" })).toBeInTheDocument();
  });
});
