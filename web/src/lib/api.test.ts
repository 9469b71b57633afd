import { afterEach, describe, expect, it, vi } from "vitest";
import { api } from "./api";
import { ProblemError } from "./problem";
import { session } from "./session";

const user = { id: "u", email: "a@b.c", name: "A", planTier: "FREE", role: "user", emailVerified: true, createdAt: "" };

describe("api client", () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    session.clear();
  });

  it("sends the bearer token from the session", async () => {
    session.set({ accessToken: "tok", refreshToken: "r", tokenType: "Bearer", expiresIn: 900, user });
    const fetchMock = vi.fn(async () => Response.json({ ok: true }));
    vi.stubGlobal("fetch", fetchMock);
    await api.get("/me");
    const init = (fetchMock.mock.calls[0] as unknown as [string, RequestInit])[1];
    expect((init.headers as Record<string, string>).Authorization).toBe("Bearer tok");
  });

  it("turns a problem+json answer into a ProblemError with its fields", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () =>
        Response.json(
          { status: 422, code: "validation_failed", title: "Invalid", detail: "bad", errors: { email: "not an email" } },
          { status: 422 },
        ),
      ),
    );
    const error = (await api.post("/auth/register", {}).catch((e: unknown) => e)) as ProblemError;
    expect(error.problem).toEqual({
      status: 422,
      code: "validation_failed",
      title: "Invalid",
      detail: "bad",
      errors: { email: "not an email" },
    });
  });

  it("turns a non-JSON error and a network failure into problems", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response("<html>bad gateway</html>", { status: 502 })));
    const e1 = (await api.get("/me").catch((e: unknown) => e)) as ProblemError;
    expect(e1.problem).toMatchObject({ status: 502, code: "server_error" });
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new TypeError("Failed to fetch"))));
    const e2 = (await api.get("/me").catch((e: unknown) => e)) as ProblemError;
    expect(e2.problem).toMatchObject({ status: 0, code: "network_error" });
  });
});
