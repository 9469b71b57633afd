import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { session } from "@/lib/session";
import { renderAt } from "@/test-utils";
import { ApiKeysPage, expiryFrom, validateKeyName } from "./api-keys-page";

const user = { id: "u", email: "ada@example.com", name: "Ada", planTier: "FREE", role: "user", emailVerified: true, createdAt: "" };
const SECRET = "sk-aichat-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde";
const existing = {
  id: "k1",
  name: "CI pipeline",
  prefix: "sk-aichat-Zz9y",
  createdAt: "2026-01-01T00:00:00Z",
  lastUsedAt: null,
  expiresAt: null,
};
const expired = { ...existing, id: "k2", name: "old laptop", prefix: "sk-aichat-Qq1w", expiresAt: "2020-01-01T00:00:00Z" };

type Init = RequestInit & { headers: Record<string, string> };

/** A gateway holding `keys`: answers list, create and delete like the real one. */
function backend(keys: object[], create?: (body: Record<string, unknown>) => Response | undefined) {
  let items = [...keys];
  const fetchMock = vi.fn(async (url: string, init: Init) => {
    if (url === "/api/v1/me/api-keys" && init.method === "GET") return Response.json({ items });
    if (url === "/api/v1/me/api-keys" && init.method === "POST") {
      const body = JSON.parse(init.body as string) as Record<string, unknown>;
      const custom = create?.(body);
      if (custom) return custom;
      const made = { id: "new", name: body.name, prefix: SECRET.slice(0, 14), createdAt: "2026-01-03T00:00:00Z", expiresAt: body.expiresAt ?? null };
      items = [{ ...made, lastUsedAt: null }, ...items];
      return Response.json({ ...made, key: SECRET }, { status: 201 });
    }
    const m = /^\/api\/v1\/me\/api-keys\/(.+)$/.exec(url);
    if (m && init.method === "DELETE") {
      items = items.filter((k) => (k as { id: string }).id !== m[1]);
      return new Response(null, { status: 204 });
    }
    return new Response(null, { status: 404 });
  });
  vi.stubGlobal("fetch", fetchMock);
  return fetchMock;
}
const sentTo = (mock: ReturnType<typeof backend>, method: string, url: string) =>
  (mock.mock.calls as unknown as [string, Init][]).filter(([u, i]) => u === url && i.method === method);

beforeEach(() => session.set({ accessToken: "a", tokenType: "Bearer", expiresIn: 900, user }));
afterEach(() => {
  vi.unstubAllGlobals();
  session.clear();
});

describe("the API keys page", () => {
  it("lists the keys with their prefix, never a secret, and marks expired ones", async () => {
    backend([existing, expired]);
    renderAt(<ApiKeysPage />, "/api-keys");
    const list = await screen.findByRole("list");
    const rows = await within(list).findAllByRole("listitem");
    expect(rows).toHaveLength(2);
    expect(rows[0]).toHaveTextContent("CI pipeline");
    expect(rows[0]).toHaveTextContent("sk-aichat-Zz9y…");
    expect(rows[0]).toHaveTextContent("last used never");
    expect(rows[0]).toHaveTextContent("never expires");
    expect(rows[0]).not.toHaveTextContent("Expired");
    expect(rows[1]).toHaveTextContent("Expired");
  });

  it("checks the name first, then creates a key and shows its secret once with a copy button and a warning", async () => {
    const fetchMock = backend([]);
    const writeText = vi.fn(async () => undefined);
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    renderAt(<ApiKeysPage />, "/api-keys");
    expect(await screen.findByText("You have no API keys.")).toBeInTheDocument();

    await userEvent.click(screen.getByRole("button", { name: "Create key" }));
    expect(screen.getByLabelText("Name")).toHaveAttribute("aria-invalid", "true");
    expect(sentTo(fetchMock, "POST", "/api/v1/me/api-keys")).toHaveLength(0);

    await userEvent.type(screen.getByLabelText("Name"), "  laptop ");
    await userEvent.selectOptions(screen.getByLabelText("Expires"), "30");
    await userEvent.click(screen.getByRole("button", { name: "Create key" }));

    const shown = await screen.findByLabelText("The new API key");
    expect(shown).toHaveValue(SECRET);
    expect(screen.getByRole("alert")).toHaveTextContent("shown only this once");
    const sent = JSON.parse(sentTo(fetchMock, "POST", "/api/v1/me/api-keys")[0]![1].body as string) as Record<string, string>;
    expect(sent.name).toBe("laptop");
    const days = (new Date(sent.expiresAt!).getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThan(30.1);

    await userEvent.click(screen.getByRole("button", { name: "Copy" }));
    expect(writeText).toHaveBeenCalledWith(SECRET);
    expect(await screen.findByText("Copied.")).toBeInTheDocument();

    // The list shows the new key by its prefix only.
    const list = screen.getByRole("list");
    await waitFor(() => expect(within(list).getAllByRole("listitem")).toHaveLength(1));
    expect(list).toHaveTextContent("sk-aichat-AbCd…");
    expect(list).not.toHaveTextContent(SECRET);

    // Once dismissed, the secret is gone from the page for good.
    await userEvent.click(screen.getByRole("button", { name: "I have saved it" }));
    expect(screen.queryByLabelText("The new API key")).not.toBeInTheDocument();
    expect(document.body).not.toHaveTextContent(SECRET);
    expect(screen.getByRole("button", { name: "Create key" })).toBeInTheDocument();
  });

  it("shows the API's refusals where they belong", async () => {
    backend([], (body) =>
      body.name === "too many"
        ? Response.json({ status: 409, code: "api_key_limit", title: "", detail: "" }, { status: 409 })
        : Response.json({ status: 422, code: "validation_failed", title: "", detail: "", errors: { name: "must not contain control characters" } }, { status: 422 }),
    );
    renderAt(<ApiKeysPage />, "/api-keys");
    await userEvent.type(screen.getByLabelText("Name"), "bad");
    await userEvent.click(screen.getByRole("button", { name: "Create key" }));
    expect(await screen.findByText("must not contain control characters")).toBeInTheDocument();
    await userEvent.clear(screen.getByLabelText("Name"));
    await userEvent.type(screen.getByLabelText("Name"), "too many");
    await userEvent.click(screen.getByRole("button", { name: "Create key" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Revoke one you no longer use first");
  });

  it("revokes a key after a confirmation", async () => {
    const fetchMock = backend([existing]);
    renderAt(<ApiKeysPage />, "/api-keys");
    await userEvent.click(await screen.findByRole("button", { name: "Revoke the key CI pipeline" }));
    expect(sentTo(fetchMock, "DELETE", "/api/v1/me/api-keys/k1")).toHaveLength(0);
    await userEvent.click(screen.getByRole("button", { name: "Keep it" }));
    await userEvent.click(screen.getByRole("button", { name: "Revoke the key CI pipeline" }));
    await userEvent.click(screen.getByRole("button", { name: "Revoke for good" }));
    expect(await screen.findByText("You have no API keys.")).toBeInTheDocument();
    expect(sentTo(fetchMock, "DELETE", "/api/v1/me/api-keys/k1")).toHaveLength(1);
  });
});

describe("the key form's rules", () => {
  it("wants a name of 1 to 100 characters", () => {
    expect(validateKeyName("  ")).toBeDefined();
    expect(validateKeyName("é".repeat(100))).toBeUndefined();
    expect(validateKeyName("é".repeat(101))).toBeDefined();
  });

  it("turns a lifetime into an expiry", () => {
    const now = new Date("2026-01-01T00:00:00Z");
    expect(expiryFrom(null, now)).toBeUndefined();
    expect(expiryFrom(30, now)).toBe("2026-01-31T00:00:00.000Z");
  });
});
