// Server-sent events over fetch: the reply of POST /conversations/{id}/messages
// with `Accept: text/event-stream` (EventSource cannot POST nor send a bearer
// token; authorizedFetch adds it). Parses the stream as the HTML standard says, whatever the chunking:
// a line, a "\r\n" or a UTF-8 character may be split across chunks.
import type { DoneEvent, Message, Schemas } from "./api-types";
import { authorizedFetch, url } from "./api";
import { ProblemError, isProblem, problemFromResponse, toProblem } from "./problem";

export interface SseEvent {
  event: string;
  data: string;
}

/** Splits a byte stream into events. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder("utf-8");
  let buffer = "";
  let event = "";
  let data: string[] = [];
  let skipLf = false; // the last chunk ended in "\r": a "\n" first in the next one belongs to it

  function* lines(text: string, flush: boolean): Generator<string> {
    buffer += text;
    let start = 0;
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer[i];
      if (skipLf) {
        skipLf = false;
        if (c === "\n" && i === start) {
          start = i + 1;
          continue;
        }
      }
      if (c === "\n" || c === "\r") {
        yield buffer.slice(start, i);
        if (c === "\r") {
          if (i + 1 < buffer.length) {
            if (buffer[i + 1] === "\n") i++;
          } else {
            skipLf = true;
          }
        }
        start = i + 1;
      }
    }
    buffer = buffer.slice(start);
    if (flush && buffer) {
      yield buffer;
      buffer = "";
    }
  }

  function* take(line: string): Generator<SseEvent> {
    if (line === "") {
      if (data.length > 0) yield { event: event || "message", data: data.join("\n") };
      event = "";
      data = [];
      return;
    }
    if (line.startsWith(":")) return; // a comment (keep-alive)
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    // id and retry do not matter to a POST's stream
  }

  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (const line of lines(decoder.decode(value, { stream: true }), false)) yield* take(line);
    }
    // An unterminated last event is dropped, as the standard says.
    for (const line of lines(decoder.decode(), true)) {
      if (line !== "") yield* take(line);
    }
  } finally {
    reader.releaseLock();
  }
}

export interface SendHandlers {
  onMessage?: (message: Message) => void;
  onDelta?: (text: string) => void;
}

/**
 * Sends a message and follows the streamed reply. Resolves with the `done`
 * event; rejects with a ProblemError for a refusal (plain HTTP error), an
 * `error` event, a stream that ends early, or an abort (code `aborted`).
 */
export async function sendMessageStream(
  conversationId: string,
  content: string,
  handlers: SendHandlers,
  signal?: AbortSignal,
): Promise<DoneEvent> {
  let response: Response;
  try {
    response = await authorizedFetch(url(`/conversations/${conversationId}/messages`), {
      method: "POST",
      headers: { Accept: "text/event-stream", "Content-Type": "application/json" },
      body: JSON.stringify({ content } satisfies Schemas["SendMessageBody"]),
      signal,
    });
  } catch (error) {
    throw new ProblemError(toProblem(error));
  }
  if (!response.ok) throw new ProblemError(await problemFromResponse(response));
  if (!response.body) throw new ProblemError(toProblem(new Error("no body")));
  try {
    for await (const { event, data } of readSse(response.body)) {
      switch (event) {
        case "message":
          handlers.onMessage?.(JSON.parse(data) as Message);
          break;
        case "delta":
          handlers.onDelta?.((JSON.parse(data) as { text: string }).text);
          break;
        case "done":
          return JSON.parse(data) as DoneEvent;
        case "error": {
          const problem: unknown = JSON.parse(data);
          throw new ProblemError(
            isProblem(problem)
              ? { ...problem, title: problem.title ?? "", detail: problem.detail ?? "" }
              : { status: 502, code: "stream_error", title: "Error", detail: "The reply failed." },
          );
        }
      }
    }
  } catch (error) {
    throw new ProblemError(toProblem(error));
  }
  throw new ProblemError({
    status: 502,
    code: "stream_ended",
    title: "The reply stopped",
    detail: "The reply stopped before it was complete. Try again.",
  });
}
