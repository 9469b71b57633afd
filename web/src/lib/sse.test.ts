import { afterEach, describe, expect, it, vi } from "vitest";
import { ProblemError } from "./problem";
import { readSse, sendMessageStream, type SseEvent } from "./sse";

function streamOf(chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(typeof c === "string" ? enc.encode(c) : c);
      controller.close();
    },
  });
}

async function all(chunks: (string | Uint8Array)[]): Promise<SseEvent[]> {
  const out: SseEvent[] = [];
  for await (const e of readSse(streamOf(chunks))) out.push(e);
  return out;
}

const whole = 'event: message\ndata: {"id":"m1"}\n\nevent: delta\ndata: {"text":"Hel"}\n\nevent: delta\ndata: {"text":"lo"}\n\nevent: done\ndata: {"x":1}\n\n';
const expected: SseEvent[] = [
  { event: "message", data: '{"id":"m1"}' },
  { event: "delta", data: '{"text":"Hel"}' },
  { event: "delta", data: '{"text":"lo"}' },
  { event: "done", data: '{"x":1}' },
];

describe("readSse", () => {
  it("reads whole events", async () => {
    expect(await all([whole])).toEqual(expected);
  });

  it("reads the same events however the stream is cut", async () => {
    for (let i = 1; i < whole.length; i++) {
      expect(await all([whole.slice(0, i), whole.slice(i)])).toEqual(expected);
    }
    expect(await all(whole.split(""))).toEqual(expected);
  });

  it("joins a line split inside its field name and value", async () => {
    expect(await all(["eve", "nt: del", "ta\nda", 'ta: {"te', 'xt":"a"}\n\n'])).toEqual([
      { event: "delta", data: '{"text":"a"}' },
    ]);
  });

  it("dispatches once when the blank line is split inside \\n\\n and \\r\\n\\r\\n", async () => {
    expect(await all(["data: a\n", "\ndata: b\n", "\n"])).toEqual([
      { event: "message", data: "a" },
      { event: "message", data: "b" },
    ]);
    expect(await all(["data: a\r", "\n\r", "\ndata: b\r\n\r\n"])).toEqual([
      { event: "message", data: "a" },
      { event: "message", data: "b" },
    ]);
  });

  it("decodes a multi-byte UTF-8 character split across chunks", async () => {
    const bytes = new TextEncoder().encode('event: delta\ndata: {"text":"é🙂"}\n\n');
    const at = bytes.indexOf(0xc3) + 1; // inside "é"
    const emoji = bytes.indexOf(0xf0) + 2; // inside the emoji
    const events = await all([bytes.slice(0, at), bytes.slice(at, emoji), bytes.slice(emoji)]);
    expect(events).toEqual([{ event: "delta", data: '{"text":"é🙂"}' }]);
  });

  it("skips comments, joins multi-line data, drops an unterminated event", async () => {
    expect(await all([": keep-alive\n\ndata: a\ndata: b\n\ndata: c"])).toEqual([{ event: "message", data: "a\nb" }]);
  });
});

describe("sendMessageStream", () => {
  afterEach(() => vi.unstubAllGlobals());

  function respond(body: string, init: ResponseInit = { status: 200 }) {
    const fetchMock = vi.fn(async () => new Response(streamOf([body]), init));
    vi.stubGlobal("fetch", fetchMock);
    return fetchMock;
  }

  it("hands over the user's message and each delta, and resolves with done", async () => {
    const done = { message: { id: "a1", content: "Hello" }, usage: { totalTokens: 3 } };
    const fetchMock = respond(
      `event: message\ndata: {"id":"u1","content":"hi"}\n\nevent: delta\ndata: {"text":"Hel"}\n\nevent: delta\ndata: {"text":"lo"}\n\nevent: done\ndata: ${JSON.stringify(done)}\n\n`,
    );
    const deltas: string[] = [];
    const messages: string[] = [];
    const result = await sendMessageStream("c1", "hi", {
      onMessage: (m) => messages.push(m.id),
      onDelta: (t) => deltas.push(t),
    });
    expect(messages).toEqual(["u1"]);
    expect(deltas).toEqual(["Hel", "lo"]);
    expect(result).toEqual(done);
    const call = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(call[0]).toBe("/api/v1/conversations/c1/messages");
    expect((call[1].headers as Record<string, string>).Accept).toBe("text/event-stream");
  });

  it("rejects with the problem of an error event", async () => {
    respond(
      'event: delta\ndata: {"text":"Hel"}\n\nevent: error\ndata: {"status":503,"code":"provider_unavailable","title":"Provider unavailable","detail":"down"}\n\n',
    );
    const error = await sendMessageStream("c1", "hi", {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProblemError);
    expect((error as ProblemError).problem).toMatchObject({ status: 503, code: "provider_unavailable" });
  });

  it("rejects with the problem of a refusal before the stream", async () => {
    respond('{"type":"about:blank","status":402,"code":"quota_exceeded","title":"Quota exceeded","detail":"over"}', {
      status: 402,
      headers: { "Content-Type": "application/problem+json" },
    });
    const error = await sendMessageStream("c1", "hi", {}).catch((e: unknown) => e);
    expect((error as ProblemError).problem).toMatchObject({ status: 402, code: "quota_exceeded", detail: "over" });
  });

  it("rejects when the stream ends without done", async () => {
    respond('event: delta\ndata: {"text":"Hel"}\n\n');
    const error = await sendMessageStream("c1", "hi", {}).catch((e: unknown) => e);
    expect((error as ProblemError).problem.code).toBe("stream_ended");
  });
});
