import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { attachmentName, download } from "./download";
import { ProblemError } from "./problem";
import { session } from "./session";

const user = { id: "u", email: "root@example.com", name: "Root", planTier: "PRO", role: "admin", emailVerified: true, createdAt: "" };

beforeEach(() => {
  session.set({ accessToken: "tok", tokenType: "Bearer", expiresIn: 900, user });
  vi.stubGlobal("URL", Object.assign(URL, { createObjectURL: vi.fn(() => "blob:csv"), revokeObjectURL: vi.fn() }));
});
afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
  session.clear();
});

describe("download", () => {
  it("asks with the token for the media type and saves the body under the server's file name", async () => {
    const fetchMock = vi.fn(
      async () =>
        new Response("date,newUsers\r\n2026-12-01,3\r\n", {
          headers: { "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": 'attachment; filename="signups-2026-12-01.csv"' },
        }),
    );
    vi.stubGlobal("fetch", fetchMock);
    const clicked: HTMLAnchorElement[] = [];
    vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(function (this: HTMLAnchorElement) {
      clicked.push(this);
    });
    const name = await download("/admin/analytics/signups", { query: { days: 7 }, accept: "text/csv", fallback: "signups.csv" });
    expect(name).toBe("signups-2026-12-01.csv");
    const [input, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit & { headers: Record<string, string> }];
    expect(input).toBe("/api/v1/admin/analytics/signups?days=7");
    expect(init.headers).toMatchObject({ Accept: "text/csv", Authorization: "Bearer tok" });
    const blob = vi.mocked(URL.createObjectURL).mock.calls[0]![0] as Blob;
    expect(await blob.text()).toBe("date,newUsers\r\n2026-12-01,3\r\n");
    expect(clicked).toHaveLength(1);
    expect(clicked[0]!.download).toBe("signups-2026-12-01.csv");
    expect(clicked[0]!.href).toBe("blob:csv");
    expect(document.querySelector("a[download]")).toBeNull();
    await vi.waitFor(() => expect(URL.revokeObjectURL).toHaveBeenCalledWith("blob:csv"));
  });

  it("rejects with the problem the gateway answered, saving nothing", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () =>
        Response.json(
          { type: "https://aichat.dev/problems/unavailable", title: "x", status: 503, detail: "analytics is down", code: "unavailable" },
          { status: 503, headers: { "Content-Type": "application/problem+json" } },
        ),
      ),
    );
    const error = await download("/admin/analytics/mrr", { accept: "text/csv", fallback: "mrr.csv" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProblemError);
    expect((error as ProblemError).problem.code).toBe("unavailable");
    expect(URL.createObjectURL).not.toHaveBeenCalled();
  });

  it("reads the file name quoted or not, and has none without the header", () => {
    expect(attachmentName('attachment; filename="a-b.csv"')).toBe("a-b.csv");
    expect(attachmentName("attachment; filename=plain.csv")).toBe("plain.csv");
    expect(attachmentName(null)).toBeUndefined();
    expect(attachmentName("inline")).toBeUndefined();
  });
});
