import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { session } from "@/lib/session";
import { renderAt } from "@/test-utils";
import { AccountDeletedPage, AccountPage, describeAgent } from "./account-page";

const user = { id: "u", email: "ada@example.com", name: "Ada", planTier: "FREE", role: "user", emailVerified: true, createdAt: "" };
const sessions = {
  items: [
    {
      id: "s1",
      userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
      ipAddress: "127.0.0.1",
      createdAt: "2026-01-01T00:00:00Z",
      lastActivityAt: "2026-01-02T00:00:00Z",
      expiresAt: "2026-02-01T00:00:00Z",
      current: true,
    },
    {
      id: "s2",
      userAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile Safari/604.1",
      ipAddress: "203.0.113.7",
      createdAt: "2026-01-01T00:00:00Z",
      lastActivityAt: "2026-01-02T00:00:00Z",
      expiresAt: "2026-02-01T00:00:00Z",
      current: false,
    },
  ],
};

type Init = RequestInit & { headers: Record<string, string> };

function backend(answer: (url: string, init: Init) => Response | undefined = () => undefined) {
  const fetchMock = vi.fn(async (url: string, init: Init) => {
    const custom = answer(url, init);
    if (custom) return custom;
    if (url === "/api/v1/me/sessions") return Response.json(sessions);
    return new Response(null, { status: 204 });
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
  localStorage.clear();
});

describe("the account page", () => {
  it("says what is wrong with the name before calling the API, then saves it", async () => {
    const fetchMock = backend((url, init) =>
      url === "/api/v1/me" && init.method === "PATCH" ? Response.json({ ...user, name: "Ada King" }) : undefined,
    );
    renderAt(<AccountPage />, "/account");
    const name = screen.getByLabelText("Name");
    await userEvent.clear(name);
    await userEvent.click(screen.getByRole("button", { name: "Save name" }));
    expect(screen.getByText("Enter your name.")).toBeInTheDocument();
    expect(name).toHaveAttribute("aria-invalid", "true");
    expect(sentTo(fetchMock, "PATCH", "/api/v1/me")).toHaveLength(0);
    await userEvent.type(name, "  Ada King ");
    await userEvent.click(screen.getByRole("button", { name: "Save name" }));
    expect(await screen.findByText("Saved.")).toBeInTheDocument();
    expect(JSON.parse(sentTo(fetchMock, "PATCH", "/api/v1/me")[0]![1].body as string)).toEqual({ name: "Ada King" });
    expect(session.get()?.user.name).toBe("Ada King");
  });

  it("checks the new password twice and shows the API's verdict on the current one", async () => {
    const fetchMock = backend((url) =>
      url === "/api/v1/me/password"
        ? Response.json(
            { status: 422, code: "validation_failed", title: "", detail: "", errors: { currentPassword: "is incorrect" } },
            { status: 422 },
          )
        : undefined,
    );
    renderAt(<AccountPage />, "/account");
    await userEvent.type(screen.getByLabelText("New password"), "short");
    await userEvent.type(screen.getByLabelText("New password again"), "shorter");
    await userEvent.click(screen.getByRole("button", { name: "Change password" }));
    expect(screen.getByText("Enter your current password.")).toBeInTheDocument();
    expect(screen.getByText("Use at least 10 characters.")).toBeInTheDocument();
    expect(screen.getByText("The two new passwords differ.")).toBeInTheDocument();
    expect(sentTo(fetchMock, "POST", "/api/v1/me/password")).toHaveLength(0);

    await userEvent.type(screen.getByLabelText("Current password"), "wrong one");
    await userEvent.clear(screen.getByLabelText("New password"));
    await userEvent.type(screen.getByLabelText("New password"), "a much longer one");
    await userEvent.clear(screen.getByLabelText("New password again"));
    await userEvent.type(screen.getByLabelText("New password again"), "a much longer one");
    await userEvent.click(screen.getByRole("button", { name: "Change password" }));
    expect(await screen.findByText("is incorrect")).toBeInTheDocument();
    expect(screen.getByLabelText("Current password")).toHaveAttribute("aria-invalid", "true");
    // What was typed stays.
    expect(screen.getByLabelText("New password")).toHaveValue("a much longer one");
  });

  it("lists the sessions, marks this one, and revokes another", async () => {
    const fetchMock = backend();
    renderAt(<AccountPage />, "/account");
    const items = await screen.findAllByRole("listitem");
    expect(items).toHaveLength(2);
    expect(within(items[0]!).getByText("This device")).toBeInTheDocument();
    expect(within(items[0]!).queryByRole("button")).toBeNull();
    expect(within(items[1]!).getByText("Safari on iOS")).toBeInTheDocument();
    await userEvent.click(within(items[1]!).getByRole("button", { name: /Revoke the session of Safari on iOS/ }));
    await waitFor(() => expect(sentTo(fetchMock, "DELETE", "/api/v1/me/sessions/s2")).toHaveLength(1));
    expect(sentTo(fetchMock, "DELETE", "/api/v1/me/sessions/s1")).toHaveLength(0);
  });

  it("logs out everywhere else: every other session, never this one", async () => {
    const fetchMock = backend();
    renderAt(<AccountPage />, "/account");
    await userEvent.click(await screen.findByRole("button", { name: "Log out everywhere else (1)" }));
    await waitFor(() => expect(sentTo(fetchMock, "DELETE", "/api/v1/me/sessions/s2")).toHaveLength(1));
    expect(sentTo(fetchMock, "DELETE", "/api/v1/me/sessions/s1")).toHaveLength(0);
  });

  it("deletes the account only with the password, then ends the session", async () => {
    const fetchMock = backend((url, init) => {
      if (url !== "/api/v1/me" || init.method !== "DELETE") return undefined;
      const { password } = JSON.parse(init.body as string) as { password: string };
      return password === "right one"
        ? new Response(null, { status: 204 })
        : Response.json({ status: 422, code: "validation_failed", title: "", detail: "", errors: { password: "is incorrect" } }, { status: 422 });
    });
    renderAt(<AccountPage />, "/account");
    await userEvent.click(screen.getByRole("button", { name: "Delete my account…" }));
    await userEvent.click(screen.getByRole("button", { name: "Delete my account for good" }));
    expect(screen.getByText("Enter your password to confirm.")).toBeInTheDocument();
    expect(sentTo(fetchMock, "DELETE", "/api/v1/me")).toHaveLength(0);
    await userEvent.type(screen.getByLabelText("Your password, to confirm"), "wrong");
    await userEvent.click(screen.getByRole("button", { name: "Delete my account for good" }));
    expect(await screen.findByText("That password is not correct.")).toBeInTheDocument();
    expect(session.get()).not.toBeNull();
    await userEvent.clear(screen.getByLabelText("Your password, to confirm"));
    await userEvent.type(screen.getByLabelText("Your password, to confirm"), "right one");
    await userEvent.click(screen.getByRole("button", { name: "Delete my account for good" }));
    await screen.findByText("elsewhere");
    expect(sentTo(fetchMock, "DELETE", "/api/v1/me")).toHaveLength(2);
  });

  it("the page after the deletion ends this page's session", async () => {
    renderAt(<AccountDeletedPage />, "/account-deleted");
    expect(screen.getByRole("status")).toHaveTextContent("Your account is deleted.");
    await waitFor(() => expect(session.get()).toBeNull());
    expect(localStorage.getItem("aichat.session")).toBeNull();
  });
});

describe("describeAgent", () => {
  it("names the browser and the system", () => {
    expect(describeAgent(sessions.items[0]!.userAgent)).toBe("Chrome on Linux");
    expect(describeAgent("aichat-tests/1")).toBe("aichat-tests/1");
    expect(describeAgent(null)).toBe("Unknown device");
  });
});
