import { useEffect, useRef, useState, type FormEvent } from "react";
import { Link, NavLink, Outlet, useLocation, useNavigate, useParams } from "react-router-dom";
import { Button, ProblemAlert } from "@/components/ui";
import type { Conversation } from "@/lib/api-types";
import { useArchiveConversation, useConversations, useDeleteConversation, useRenameConversation } from "../api/chat";
import styles from "./chat.module.css";

export function ChatLayout() {
  const { conversationId } = useParams();
  const { pathname } = useLocation();
  const [archived, setArchived] = useState(false);
  const conversations = useConversations(archived);
  const items = conversations.data?.pages.flatMap((p) => p.items) ?? [];
  const open = Boolean(conversationId) || pathname.endsWith("/new");
  const sentinel = useRef<HTMLDivElement>(null);
  const { hasNextPage, isFetchingNextPage, fetchNextPage } = conversations;

  // Infinite scroll: the next page loads as the end of the list comes into view.
  useEffect(() => {
    const end = sentinel.current;
    if (!end || !hasNextPage || typeof IntersectionObserver === "undefined") return;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && !isFetchingNextPage) void fetchNextPage();
    });
    observer.observe(end);
    return () => observer.disconnect();
  }, [hasNextPage, isFetchingNextPage, fetchNextPage]);

  return (
    <div className={styles.layout} data-open={open}>
      <nav className={styles.sidebar} aria-label="Conversations">
        <p>
          <Link to="/chat/new" className="new-conversation">
            + New conversation
          </Link>
        </p>
        <div className={styles.listHead}>
          <h2>{archived ? "Archived" : "Conversations"}</h2>
          <button type="button" className={styles.linkButton} onClick={() => setArchived((a) => !a)} aria-pressed={archived}>
            {archived ? "Show current" : "Show archived"}
          </button>
        </div>
        <ProblemAlert problem={conversations.error?.problem} />
        {conversations.isPending && <p>Loading…</p>}
        {conversations.isSuccess && items.length === 0 && <p>{archived ? "No archived conversations." : "No conversations yet."}</p>}
        <ul className={styles.list}>
          {items.map((c) => (
            <ConversationItem key={c.id} conversation={c} current={c.id === conversationId} />
          ))}
        </ul>
        <div ref={sentinel} />
        {hasNextPage && (
          <Button variant="secondary" onClick={() => void fetchNextPage()} disabled={isFetchingNextPage}>
            {isFetchingNextPage ? "Loading…" : "Load more"}
          </Button>
        )}
      </nav>
      <div className={styles.main}>
        <Outlet />
      </div>
    </div>
  );
}

type Mode = "idle" | "menu" | "rename" | "delete";

/** One conversation of the list, with its actions: rename, archive (or restore), delete (confirmed). */
export function ConversationItem({ conversation: c, current }: { conversation: Conversation; current: boolean }) {
  const [mode, setMode] = useState<Mode>("idle");
  const [title, setTitle] = useState(c.title);
  const [error, setError] = useState<string>();
  const rename = useRenameConversation();
  const archive = useArchiveConversation();
  const remove = useDeleteConversation();
  const navigate = useNavigate();
  const problem = rename.error?.problem ?? archive.error?.problem ?? remove.error?.problem;

  const submitRename = (e: FormEvent) => {
    e.preventDefault();
    const trimmed = title.trim();
    if (!trimmed) return setError("Enter a title.");
    if (trimmed.length > 500) return setError("Use at most 500 characters.");
    setError(undefined);
    rename.mutate({ id: c.id, title: trimmed }, { onSuccess: () => setMode("idle") });
  };

  const leaveIfOpen = () => {
    if (current) navigate("/chat", { replace: true });
  };

  return (
    <li className={styles.item}>
      {mode === "rename" ? (
        <form onSubmit={submitRename} className={styles.renameForm} noValidate>
          <label htmlFor={`title-${c.id}`} className="visually-hidden">
            New title
          </label>
          <input
            id={`title-${c.id}`}
            value={title}
            onChange={(e) => setTitle(e.target.value)}
            onKeyDown={(e) => e.key === "Escape" && setMode("idle")}
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? `title-${c.id}-error` : undefined}
            autoFocus
          />
          {error && (
            <span id={`title-${c.id}-error`} className={styles.fieldError}>
              {error}
            </span>
          )}
          <div className={styles.actions}>
            <Button type="submit" disabled={rename.isPending}>
              Save
            </Button>
            <Button variant="secondary" onClick={() => setMode("idle")}>
              Cancel
            </Button>
          </div>
        </form>
      ) : (
        <div className={styles.itemRow}>
          <NavLink to={`/chat/${c.id}`} title={c.title}>
            {c.title}
          </NavLink>
          <button
            type="button"
            className={styles.more}
            aria-label={`Actions for ${c.title}`}
            aria-expanded={mode !== "idle"}
            onClick={() => setMode((m) => (m === "idle" ? "menu" : "idle"))}
          >
            ⋯
          </button>
        </div>
      )}
      {mode === "menu" && (
        <div className={styles.actions} role="group" aria-label={`Actions for ${c.title}`}>
          <Button
            variant="secondary"
            onClick={() => {
              setTitle(c.title);
              setMode("rename");
            }}
          >
            Rename
          </Button>
          <Button
            variant="secondary"
            disabled={archive.isPending}
            onClick={() =>
              archive.mutate(
                { id: c.id, archived: !c.isArchived },
                {
                  onSuccess: () => {
                    setMode("idle");
                    leaveIfOpen();
                  },
                },
              )
            }
          >
            {c.isArchived ? "Restore" : "Archive"}
          </Button>
          <Button variant="danger" onClick={() => setMode("delete")}>
            Delete
          </Button>
        </div>
      )}
      {mode === "delete" && (
        <div className={styles.confirm} role="alertdialog" aria-label="Delete the conversation?">
          <p>Delete “{c.title}” and all its messages? This cannot be undone.</p>
          <div className={styles.actions}>
            <Button variant="danger" disabled={remove.isPending} onClick={() => remove.mutate(c.id, { onSuccess: leaveIfOpen })}>
              {remove.isPending ? "Deleting…" : "Delete for good"}
            </Button>
            <Button variant="secondary" onClick={() => setMode("idle")} autoFocus>
              Cancel
            </Button>
          </div>
        </div>
      )}
      {mode !== "idle" && <ProblemAlert problem={problem} />}
    </li>
  );
}

export function ChatHome() {
  return <p className={styles.empty}>Pick a conversation or start a new one.</p>;
}
