import { afterEach, describe, expect, it, vi } from "vitest";
import { keepSessionFresh, refreshNow } from "./refresh";
import { session } from "./session";

const user = { id: "u", email: "a@b.c", name: "A", planTier: "FREE", role: "user", emailVerified: true, createdAt: "" };
const tokens = (access: string, refresh: string) => ({ accessToken: access, refreshToken: refresh, tokenType: "Bearer", expiresIn: 900, user });

afterEach(() => {
  vi.unstubAllGlobals();
  vi.useRealTimers();
  session.clear();
});

describe("the session's refresh", () => {
  it("swaps in the rotated pair, one call for concurrent callers", async () => {
    session.set(tokens("a1", "r1"));
    const fetchMock = vi.fn(async () => Response.json(tokens("a2", "r2")));
    vi.stubGlobal("fetch", fetchMock);
    expect(await Promise.all([refreshNow(), refreshNow()])).toEqual([true, true]);
    expect(fetchMock).toHaveBeenCalledTimes(1);
    const init = (fetchMock.mock.calls[0] as unknown as [string, RequestInit])[1];
    expect(JSON.parse(init.body as string)).toEqual({ refreshToken: "r1" });
    expect(session.get()?.accessToken).toBe("a2");
    expect(session.get()?.refreshToken).toBe("r2");
  });

  it("ends the session when the refresh token is refused", async () => {
    session.set(tokens("a1", "r1"));
    vi.stubGlobal("fetch", vi.fn(async () => Response.json({ status: 401, code: "invalid_token", title: "", detail: "" }, { status: 401 })));
    expect(await refreshNow()).toBe(false);
    expect(session.get()).toBeNull();
  });

  it("refreshes a minute before the access token expires", async () => {
    vi.useFakeTimers();
    const fetchMock = vi.fn(async () => Response.json(tokens("a2", "r2")));
    vi.stubGlobal("fetch", fetchMock);
    const stop = keepSessionFresh();
    session.set(tokens("a1", "r1")); // expires in 900 s
    await vi.advanceTimersByTimeAsync(838_000);
    expect(fetchMock).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(3_000);
    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(session.accessToken()).toBe("a2");
    stop();
  });
});
