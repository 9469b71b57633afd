import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { session } from "@/lib/session";
import { renderAt } from "@/test-utils";
import { LoginPage, SignupPage, VerifyEmailPage } from "./auth-pages";

afterEach(() => {
  vi.unstubAllGlobals();
  session.clear();
  localStorage.clear();
});

describe("sign up", () => {
  it("says what is wrong with each field before calling the API", async () => {
    const fetchMock = vi.fn();
    vi.stubGlobal("fetch", fetchMock);
    renderAt(<SignupPage />, "/signup");
    await userEvent.type(screen.getByLabelText("Email"), "not-an-email");
    await userEvent.type(screen.getByLabelText("Password"), "short");
    await userEvent.click(screen.getByRole("button", { name: "Sign up" }));
    expect(screen.getByText("Enter your name.")).toBeInTheDocument();
    expect(screen.getByText("Enter an email address like name@example.com.")).toBeInTheDocument();
    expect(screen.getByText("Use at least 10 characters.")).toBeInTheDocument();
    expect(screen.getByLabelText("Password")).toHaveAttribute("aria-invalid", "true");
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it("shows the API's refusal as a sentence and keeps what was typed", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () =>
        Response.json({ status: 409, code: "email_taken", title: "Conflict", detail: "taken" }, { status: 409 }),
      ),
    );
    renderAt(<SignupPage />, "/signup");
    await userEvent.type(screen.getByLabelText("Name"), "Ada");
    await userEvent.type(screen.getByLabelText("Email"), "ada@example.com");
    await userEvent.type(screen.getByLabelText("Password"), "correct horse battery");
    await userEvent.click(screen.getByRole("button", { name: "Sign up" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("An account with this email already exists.");
    expect(screen.getByLabelText("Email")).toHaveValue("ada@example.com");
  });
});

describe("log in", () => {
  it("asks for the cookie and keeps the access token in memory, never in localStorage", async () => {
    const user = { id: "u", email: "ada@example.com", name: "Ada", planTier: "FREE", role: "user", emailVerified: true, createdAt: "" };
    const fetchMock = vi.fn(async () => Response.json({ accessToken: "a", tokenType: "Bearer", expiresIn: 900, user }));
    vi.stubGlobal("fetch", fetchMock);
    renderAt(<LoginPage />, "/login");
    await userEvent.type(screen.getByLabelText("Email"), "ada@example.com");
    await userEvent.type(screen.getByLabelText("Password"), "whatever it is");
    await userEvent.click(screen.getByRole("button", { name: "Log in" }));
    await screen.findByText("elsewhere");
    expect(session.accessToken()).toBe("a");
    const init = (fetchMock.mock.calls[0] as unknown as [string, RequestInit & { headers: Record<string, string> }])[1];
    expect(init.headers["X-Session-Cookie"]).toBe("1");
    // Only the flag that a cookie session exists, no token.
    expect(Object.keys(localStorage)).toEqual(["aichat.session"]);
    expect(localStorage.getItem("aichat.session")).toBe("1");
  });
});

describe("verify email", () => {
  it("posts the token of the mail's link once", async () => {
    const fetchMock = vi.fn(async () => Response.json({ user: {} }));
    vi.stubGlobal("fetch", fetchMock);
    renderAt(<VerifyEmailPage />, "/verify-email?token=abc", "/verify-email");
    expect(await screen.findByText(/Your email is verified/)).toBeInTheDocument();
    await waitFor(() => expect(fetchMock).toHaveBeenCalledTimes(1));
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe("/api/v1/auth/verify-email");
    expect(JSON.parse(init.body as string)).toEqual({ token: "abc" });
  });
});
