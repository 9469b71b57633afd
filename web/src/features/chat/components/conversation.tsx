import { useQueryClient, type InfiniteData } from "@tanstack/react-query";
import { useVirtualizer } from "@tanstack/react-virtual";
import { memo, useCallback, useEffect, useLayoutEffect, useRef, useState, type KeyboardEvent } from "react";
import { Link, useParams } from "react-router-dom";
import { MarkdownText } from "@/components/markdown";
import { Button, ProblemAlert } from "@/components/ui";
import type { Message, MessagePage } from "@/lib/api-types";
import { toProblem, type Problem } from "@/lib/problem";
import { api } from "@/lib/api";
import { sendMessageStream } from "@/lib/sse";
import { chatKeys, useConversation, useMessages } from "../api/chat";
import styles from "./chat.module.css";

export function ConversationPage() {
  const { conversationId = "" } = useParams();
  // A fresh view (and draft) per conversation.
  return <ConversationView key={conversationId} id={conversationId} />;
}

function ConversationView({ id }: { id: string }) {
  const conversation = useConversation(id);
  const { messages, error, isPending } = useMessages(id);
  const client = useQueryClient();
  const [draft, setDraft] = useState("");
  const [sent, setSent] = useState<Message | null>(null);
  const [reply, setReply] = useState<string | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  // A send that failed for a reason worth trying again (the provider, the
  // network, a rate limit): its text, and the user message it left without
  // a reply (nothing was produced), which a retry replaces.
  const [retry, setRetry] = useState<{ content: string; orphan?: string } | null>(null);
  const abort = useRef<AbortController | null>(null);
  const streaming = reply !== null;

  useEffect(() => () => abort.current?.abort(), []);

  // What the list shows: the saved messages, the one just sent (until it is
  // in the cache), the reply as it streams.
  const rows: Row[] = messages.map((m) => ({ key: m.id, role: m.role, content: m.content }));
  if (sent && !messages.some((m) => m.id === sent.id)) rows.push({ key: `sent-${sent.id}`, role: "user", content: sent.content });
  if (streaming) rows.push({ key: "live", role: "assistant", content: reply || "…", live: true });

  // Virtualised: only the rows in view (and a few more) are in the DOM, so
  // a conversation of thousands of messages scrolls smoothly.
  const scroller = useRef<HTMLElement>(null);
  const atBottom = useRef(true);
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => 96,
    overscan: 6,
    // It scrolls from a layout effect (following the end): no flushSync there.
    useFlushSync: false,
    getItemKey: (i) => rows[i]?.key ?? i,
  });
  // Follow the end while the reader is there (a new message, each delta).
  useLayoutEffect(() => {
    if (atBottom.current && rows.length > 0) virtualizer.scrollToIndex(rows.length - 1, { align: "end" });
  }, [rows.length, reply, virtualizer]);

  const append = useCallback(
    (added: Message[]) => {
      client.setQueryData<InfiniteData<MessagePage>>(chatKeys.messages(id), (data) => {
        if (!data) return data;
        const pages = data.pages.slice();
        const last = pages[pages.length - 1];
        if (!last) return data;
        const known = new Set(pages.flatMap((p) => p.items.map((m) => m.id)));
        pages[pages.length - 1] = { ...last, items: [...last.items, ...added.filter((m) => !known.has(m.id))] };
        return { ...data, pages };
      });
    },
    [client, id],
  );

  const send = async (content = draft.trim()) => {
    if (!content || streaming) return;
    const controller = new AbortController();
    abort.current = controller;
    setProblem(null);
    setRetry(null);
    setReply("");
    let saved: Message | null = null;
    let text = "";
    try {
      const done = await sendMessageStream(
        id,
        content,
        {
          onMessage: (m) => {
            saved = m;
            setSent(m);
            setDraft((d) => (d.trim() === content ? "" : d)); // saved: the draft may go
          },
          onDelta: (t) => {
            text += t;
            setReply(text);
          },
        },
        controller.signal,
      );
      append(saved ? [saved, done.message] : [done.message]);
    } catch (e) {
      const p = toProblem(e);
      if (saved) append([saved]);
      if (p.code === "aborted") {
        if (text) setProblem({ status: 0, code: "aborted", title: "Stopped", detail: "Stopped." });
      } else {
        setProblem(p);
        if (retryable(p)) setRetry({ content, orphan: saved && !text ? (saved as Message).id : undefined });
      }
    } finally {
      abort.current = null;
      setSent(null);
      setReply(null);
      void client.invalidateQueries({ queryKey: chatKeys.conversations });
      void client.invalidateQueries({ queryKey: chatKeys.conversation(id) });
      void client.invalidateQueries({ queryKey: ["usage"] });
      void client.invalidateQueries({ queryKey: chatKeys.messages(id) });
    }
  };

  const stop = () => abort.current?.abort();

  // Sends the failed text again; a user message left without any reply is
  // deleted first, so the history shows it once.
  const retrySend = async () => {
    if (!retry) return;
    const { content, orphan } = retry;
    setRetry(null);
    if (orphan) {
      try {
        await api.delete(`/conversations/${id}/messages/${orphan}`);
      } catch (e) {
        const p = toProblem(e);
        if (p.status !== 404) {
          setProblem(p);
          setRetry({ content, orphan });
          return;
        }
      }
      await client.invalidateQueries({ queryKey: chatKeys.messages(id) });
    }
    await send(content);
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void send();
    } else if (e.key === "Escape" && streaming) {
      e.preventDefault();
      stop();
    }
  };

  const title = conversation.data?.title ?? "Conversation";
  return (
    <>
      <header className={styles.header}>
        <Link to="/chat" className={styles.back}>
          ← Conversations
        </Link>
        <h1>{title}</h1>
        {conversation.data && <p>{conversation.data.model}</p>}
      </header>
      <ProblemAlert problem={conversation.error?.problem ?? error?.problem} />
      <section
        ref={scroller}
        className={styles.scroller}
        aria-label="Messages"
        aria-busy={streaming}
        tabIndex={0}
        onScroll={(e) => {
          const el = e.currentTarget;
          atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
        }}
      >
        {isPending && <p>Loading…</p>}
        {!isPending && rows.length === 0 && <p className={styles.empty}>Say something to start.</p>}
        <div className={styles.rows} style={{ height: virtualizer.getTotalSize() }}>
          {virtualizer.getVirtualItems().map((item) => {
            const row = rows[item.index];
            if (!row) return null;
            return (
              <div
                key={item.key}
                data-index={item.index}
                ref={virtualizer.measureElement}
                className={styles.row}
                style={{ transform: `translateY(${item.start}px)` }}
              >
                <MessageBubble role={row.role} content={row.content} live={row.live} />
              </div>
            );
          })}
        </div>
      </section>
      <form
        className={styles.composer}
        onSubmit={(e) => {
          e.preventDefault();
          void send();
        }}
      >
        <ProblemAlert problem={problem}>
          {problem?.status === 402 && <Link to="/billing">See the plans</Link>}
          {retry && !streaming && (
            <Button variant="secondary" onClick={() => void retrySend()}>
              Retry
            </Button>
          )}
        </ProblemAlert>
        <div className={styles.composerRow}>
          <label htmlFor="composer" className="visually-hidden">
            Message
          </label>
          <textarea
            id="composer"
            rows={2}
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={onKeyDown}
            placeholder="Message (Enter sends, Shift+Enter new line, Esc stops)"
          />
          {streaming ? (
            <Button variant="danger" onClick={stop}>
              Stop
            </Button>
          ) : (
            <Button type="submit" disabled={!draft.trim()}>
              Send
            </Button>
          )}
        </div>
      </form>
    </>
  );
}

/** A failure that may pass on a second try: not a refusal of the request itself. */
function retryable(p: Problem): boolean {
  return p.status === 0 || p.status === 429 || p.status >= 500;
}

interface Row {
  key: string;
  role: string;
  content: string;
  live?: boolean;
}

/** One message: the user's as typed, the assistant's as Markdown. */
const MessageBubble = memo(function MessageBubble({ role, content, live }: { role: string; content: string; live?: boolean }) {
  const mine = role === "user";
  return (
    <article className={`${styles.message} ${mine ? styles.user : styles.assistant}`} aria-live={live ? "polite" : undefined}>
      <span className={styles.role}>{mine ? "You" : "Assistant"}</span>
      {mine ? <span className={styles.plain}>{content}</span> : <MarkdownText text={content} />}
    </article>
  );
});
