import { act, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import type { User } from "@/lib/api-types";
import { session } from "@/lib/session";
import { renderAt } from "@/test-utils";
import { AppLayout } from "./layout";

const user: User = { id: "u", email: "ada@example.com", name: "Ada", planTier: "FREE", role: "user", emailVerified: true, createdAt: "" };

afterEach(() => {
  act(() => session.clear());
  localStorage.clear();
});

describe("the signed-in navigation", () => {
  it("links the plans, and the admin place only for an admin", () => {
    session.set({ accessToken: "a", tokenType: "Bearer", expiresIn: 900, user });
    const { unmount } = renderAt(<AppLayout />, "/chat");
    expect(screen.getByRole("link", { name: "Plans" })).toHaveAttribute("href", "/billing");
    expect(screen.queryByRole("link", { name: "Admin" })).not.toBeInTheDocument();
    unmount();

    session.set({ accessToken: "a", tokenType: "Bearer", expiresIn: 900, user: { ...user, role: "admin" } });
    renderAt(<AppLayout />, "/chat");
    expect(screen.getByRole("link", { name: "Admin" })).toHaveAttribute("href", "/admin");
  });
});
