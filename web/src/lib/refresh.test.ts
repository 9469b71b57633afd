import { afterEach, describe, expect, it, vi } from "vitest";
import { api, refreshSession } from "./api";
import { RETRY_MS, keepSessionFresh, restoreSession } from "./refresh";
import { SESSION_FLAG, session } from "./session";

const user = { id: "u", email: "a@b.c", name: "A", planTier: "FREE", role: "user", emailVerified: true, createdAt: "" };
// What the gateway answers a cookie client: no refreshToken in the JSON.
const tokens = (access: string, expiresIn = 900) => ({ accessToken: access, tokenType: "Bearer", expiresIn, user });
const refused = () => Response.json({ status: 401, code: "invalid_token", title: "", detail: "" }, { status: 401 });

type Call = [string, RequestInit & { headers: Record<string, string> }];
const calls = (mock: ReturnType<typeof vi.fn>) => mock.mock.calls as unknown as Call[];

afterEach(() => {
  vi.unstubAllGlobals();
  vi.useRealTimers();
  session.clear();
  localStorage.clear();
});

describe("the refresh by the cookie", () => {
  it("sends no token, only the CSRF header, and one call serves concurrent callers", async () => {
    session.set(tokens("a1"));
    const fetchMock = vi.fn(async () => Response.json(tokens("a2")));
    vi.stubGlobal("fetch", fetchMock);
    expect(await Promise.all([refreshSession(), refreshSession()])).toEqual([true, true]);
    expect(fetchMock).toHaveBeenCalledTimes(1);
    const [url, init] = calls(fetchMock)[0]!;
    expect(url).toBe("/api/v1/auth/refresh");
    expect(init.method).toBe("POST");
    expect(JSON.parse(init.body as string)).toEqual({});
    expect(init.headers["X-Requested-With"]).toBe("aichat");
    expect(init.headers["X-Session-Cookie"]).toBe("1");
    expect(init.headers.Authorization).toBeUndefined();
    expect(init.credentials).toBe("same-origin");
    expect(session.accessToken()).toBe("a2");
  });

  it("ends the session when the cookie is refused, and tells other tabs", async () => {
    session.set(tokens("a1"));
    expect(localStorage.getItem(SESSION_FLAG)).toBe("1");
    vi.stubGlobal("fetch", vi.fn(async () => refused()));
    expect(await refreshSession()).toBe(false);
    expect(session.get()).toBeNull();
    expect(localStorage.getItem(SESSION_FLAG)).toBeNull();
  });

  it("keeps the session when the server is not reached", async () => {
    session.set(tokens("a1"));
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new TypeError("Failed to fetch"))));
    expect(await refreshSession()).toBe(false);
    expect(session.accessToken()).toBe("a1");
  });

  it("never puts a token in localStorage", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Response.json(tokens("secret-access"))));
    await refreshSession();
    const stored = Object.keys(localStorage).map((k) => `${k}=${localStorage.getItem(k)}`);
    expect(stored).toEqual([`${SESSION_FLAG}=1`]);
  });
});

describe("start-up", () => {
  it("restores the session of an earlier page from the cookie (a reload keeps you logged in)", async () => {
    localStorage.setItem(SESSION_FLAG, "1");
    vi.stubGlobal("fetch", vi.fn(async () => Response.json(tokens("restored"))));
    const restoring = restoreSession();
    expect(session.isRestoring()).toBe(true);
    expect(await restoring).toBe(true);
    expect(session.isRestoring()).toBe(false);
    expect(session.accessToken()).toBe("restored");
  });

  it("does not call the API when this browser never logged in or logged out", async () => {
    const fetchMock = vi.fn();
    vi.stubGlobal("fetch", fetchMock);
    expect(await restoreSession()).toBe(false);
    expect(fetchMock).not.toHaveBeenCalled();
    expect(session.isRestoring()).toBe(false);
  });

  it("lands logged out when the cookie is gone", async () => {
    localStorage.setItem(SESSION_FLAG, "1");
    vi.stubGlobal("fetch", vi.fn(async () => refused()));
    expect(await restoreSession()).toBe(false);
    expect(session.get()).toBeNull();
    expect(session.isRestoring()).toBe(false);
    expect(session.mayRestore()).toBe(false);
  });
});

describe("staying fresh", () => {
  it("refreshes a minute before the access token expires", async () => {
    vi.useFakeTimers();
    const fetchMock = vi.fn(async () => Response.json(tokens("a2")));
    vi.stubGlobal("fetch", fetchMock);
    const stop = keepSessionFresh();
    session.set(tokens("a1")); // expires in 900 s
    await vi.advanceTimersByTimeAsync(838_000);
    expect(fetchMock).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(3_000);
    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(session.accessToken()).toBe("a2");
    stop();
  });

  it("tries again shortly when the server was not reached", async () => {
    vi.useFakeTimers();
    const fetchMock = vi
      .fn()
      .mockImplementationOnce(async () => Promise.reject(new TypeError("Failed to fetch")))
      .mockImplementation(async () => Response.json(tokens("a2")));
    vi.stubGlobal("fetch", fetchMock);
    const stop = keepSessionFresh();
    session.set(tokens("a1", 65)); // refresh due in 5 s
    await vi.advanceTimersByTimeAsync(5_000);
    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(session.accessToken()).toBe("a1");
    await vi.advanceTimersByTimeAsync(RETRY_MS);
    expect(fetchMock).toHaveBeenCalledTimes(2);
    expect(session.accessToken()).toBe("a2");
    stop();
  });

  it("a call answered 401 is retried once after a silent refresh", async () => {
    session.set(tokens("stale"));
    const fetchMock = vi.fn(async (url: string, init: RequestInit & { headers: Record<string, string> }) => {
      if (url === "/api/v1/auth/refresh") return Response.json(tokens("fresh"));
      return init.headers.Authorization === "Bearer fresh" ? Response.json({ ok: true }) : refused();
    });
    vi.stubGlobal("fetch", fetchMock);
    expect(await api.get("/me")).toEqual({ ok: true });
    expect(calls(fetchMock).map(([url]) => url)).toEqual(["/api/v1/me", "/api/v1/auth/refresh", "/api/v1/me"]);
  });

  it("a log-out in another tab ends this tab's session", async () => {
    const stop = keepSessionFresh();
    session.set(tokens("a1"));
    window.dispatchEvent(new StorageEvent("storage", { key: SESSION_FLAG, oldValue: "1", newValue: null }));
    expect(session.get()).toBeNull();
    stop();
  });
});
